package delivery

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestErrorTextSpeaksCustomerWords sends real requests that fail in each way a customer will
// see and checks the text shown in test results and the delivery log: what went wrong, in words
// about the customer's endpoint, never our resolver, addresses or Go error chains.
func TestErrorTextSpeaksCustomerWords(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) }) // runs first: Close waits for the handler
	untrusted := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(untrusted.Close)
	hangup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = c.Close()
		}
	}))
	t.Cleanup(hangup.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + l.Addr().String() + "/"
	_ = l.Close()

	tests := []struct {
		name     string
		url      string
		loopback bool
		timeout  time.Duration
		want     string
	}{
		{"dns", "https://no-such-host.invalid/hook", false, 0, "DNS lookup failed: no-such-host.invalid not found"},
		{"refused", closedURL, true, 0, "connection refused by the endpoint"},
		{"timeout", hang.URL, true, 200 * time.Millisecond, "timed out after 200ms waiting for the endpoint"},
		{"tls", untrusted.URL, true, 0, "TLS error: the endpoint's certificate is not trusted"},
		{"closed", hangup.URL, true, 0, "the endpoint closed the connection without answering"},
		{"address policy", strings.Replace(hang.URL, "127.0.0.1", "localhost", 1), false, 0,
			"refused by address policy (SSRF guard): the host resolves to a private or reserved address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := newSender(t, tt.loopback).Send(context.Background(), Request{
				URL: tt.url, Body: []byte("{}"), MsgID: "evt_x", Timeout: tt.timeout})
			if res.Err == nil {
				t.Fatalf("got status %d, want a transport error", res.Status)
			}
			if got := res.ErrorText(); got != tt.want {
				t.Errorf("ErrorText: got %q, want %q (from %v)", got, tt.want, res.Err)
			}
		})
	}
}
