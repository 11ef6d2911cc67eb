package delivery

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/customertext/webhooks/libs/signing"
	"github.com/customertext/webhooks/libs/ssrf"
)

type captured struct {
	header http.Header
	body   []byte
}

func newSender(t *testing.T, allowLoopback bool) *Sender {
	t.Helper()
	var allow []netip.Prefix
	if allowLoopback {
		allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
	s, err := NewSender(Config{Guard: ssrf.New(allow), UserAgent: "CustomerText-Webhooks/test"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSendSignsAndAuthenticates(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got captured
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = captured{header: r.Header.Clone(), body: b}
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte("thanks"))
	}))
	defer srv.Close()

	secret, _, err := signing.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"event":"new_contact","event_id":"evt_1"}`)
	res := newSender(t, true).Send(context.Background(), Request{
		URL: srv.URL, Body: body, MsgID: "evt_1", Secrets: []signing.Secret{secret},
		AuthHeaderName: "X-Api-Key", AuthHeaderValue: "sekret-value",
	})
	if !res.Succeeded() || res.Status != http.StatusAccepted || res.Body != "thanks" {
		t.Fatalf("got %+v, want a 202 with body thanks", res)
	}
	mu.Lock()
	defer mu.Unlock()
	if string(got.body) != string(body) {
		t.Errorf("got body %s, want %s", got.body, body)
	}
	for k, want := range map[string]string{
		"Content-Type": "application/json", "User-Agent": "CustomerText-Webhooks/test",
		"X-Api-Key": "sekret-value", "Webhook-Id": "evt_1",
	} {
		if v := got.header.Get(k); v != want {
			t.Errorf("header %s: got %q, want %q", k, v, want)
		}
	}
	if err := signing.Verify(secret, got.header, got.body, time.Now(), 5*time.Minute); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}
	if v := res.Headers["x-api-key"]; v != Redacted {
		t.Errorf("recorded auth header: got %q, want %q", v, Redacted)
	}
	for k, v := range res.Headers {
		if strings.Contains(v, "sekret-value") {
			t.Errorf("recorded header %s leaks the secret", k)
		}
	}
}

func TestSendFailures(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("/gone", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	mux.HandleFunc("/busy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(strings.Repeat("x", 3*MaxResponseExcerpt)))
	})
	release := make(chan struct{})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(release)
	s := newSender(t, true)

	tests := []struct {
		path       string
		timeout    time.Duration
		wantStatus int
		wantGone   bool
		wantRetry  time.Duration
		wantErr    bool
		bodyLen    int
	}{
		{path: "/redirect", wantStatus: http.StatusFound},
		{path: "/gone", wantStatus: http.StatusGone, wantGone: true},
		{path: "/busy", wantStatus: http.StatusTooManyRequests, wantRetry: 7 * time.Second},
		{path: "/big", wantStatus: http.StatusInternalServerError, bodyLen: MaxResponseExcerpt},
		{path: "/hang", timeout: 200 * time.Millisecond, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res := s.Send(context.Background(), Request{URL: srv.URL + tt.path, Body: []byte("{}"), MsgID: "evt_x", Timeout: tt.timeout})
			if res.Succeeded() {
				t.Fatalf("got success, want failure: %+v", res)
			}
			if res.Status != tt.wantStatus {
				t.Errorf("got status %d, want %d", res.Status, tt.wantStatus)
			}
			if res.Gone() != tt.wantGone {
				t.Errorf("got gone %v, want %v", res.Gone(), tt.wantGone)
			}
			if res.RetryAfter != tt.wantRetry {
				t.Errorf("got retry-after %s, want %s", res.RetryAfter, tt.wantRetry)
			}
			if (res.Err != nil) != tt.wantErr {
				t.Errorf("got err %v, want error %v", res.Err, tt.wantErr)
			}
			if tt.bodyLen > 0 && len(res.Body) != tt.bodyLen {
				t.Errorf("got excerpt of %d bytes, want %d", len(res.Body), tt.bodyLen)
			}
			if res.ErrorText() == "" {
				t.Error("got empty error text for a failure")
			}
		})
	}
}

func TestSendRefusesLoopbackWithoutAllowList(t *testing.T) {
	t.Parallel()
	hit := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit <- struct{}{} }))
	defer srv.Close()
	// "localhost" resolves to loopback at dial time, as a rebinding name would.
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	res := newSender(t, false).Send(context.Background(), Request{URL: url, Body: []byte("{}"), MsgID: "evt_x"})
	if res.Err == nil || !errors.Is(res.Err, ssrf.ErrForbidden) {
		t.Fatalf("got %+v, want an SSRF refusal", res)
	}
	select {
	case <-hit:
		t.Fatal("the receiver was reached")
	default:
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 4, 25, 14, 30, 0, 0, time.UTC)
	tests := map[string]time.Duration{
		"":                              0,
		"120":                           2 * time.Minute,
		"-5":                            0,
		"soon":                          0,
		"Sat, 25 Apr 2026 14:31:00 GMT": time.Minute,
		"Sat, 25 Apr 2026 14:00:00 GMT": 0,
	}
	for in, want := range tests {
		if got := ParseRetryAfter(in, now); got != want {
			t.Errorf("ParseRetryAfter(%q): got %s, want %s", in, got, want)
		}
	}
}

// TestSendTraceContextOnlyWhenAsked: the propagator's headers (traceparent, tracestate, baggage)
// reach the endpoint only for a request that asks for them.
func TestSendTraceContextOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	s, err := NewSender(Config{Guard: ssrf.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}),
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	traceID, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	spanID, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	state, _ := trace.ParseTraceState("ct=internal")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled, TraceState: state}))
	member, _ := baggage.NewMember("tenant", "acc_1")
	bag, _ := baggage.New(member)
	ctx = baggage.ContextWithBaggage(ctx, bag)

	for _, tc := range []struct {
		name string
		send bool
		want map[string]string
	}{
		{"chosen", true, map[string]string{"Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			"Tracestate": "ct=internal", "Baggage": "tenant=acc_1"}},
		{"not chosen", false, map[string]string{"Traceparent": "", "Tracestate": "", "Baggage": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := s.Send(ctx, Request{URL: srv.URL, Body: []byte(`{}`), MsgID: "evt_1", SendTraceContext: tc.send})
			if !res.Succeeded() {
				t.Fatalf("got %+v, want success", res)
			}
			mu.Lock()
			defer mu.Unlock()
			for k, want := range tc.want {
				if v := got.Get(k); v != want {
					t.Errorf("header %s: got %q, want %q", k, v, want)
				}
				if v := res.Headers[strings.ToLower(k)]; v != want {
					t.Errorf("recorded header %s: got %q, want %q", k, v, want)
				}
			}
		})
	}
}
