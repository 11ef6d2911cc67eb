package main

import (
	"context"
	"net/url"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	messagingv1 "github.com/customertext/webhooks/libs/gen/customertext/messaging/v1"
	"github.com/customertext/webhooks/libs/tcpproxy"
)

// TestPostgresOutageAnswersUnavailable stops a TCP proxy between messaging and the real
// PostgreSQL: gRPC calls answer UNAVAILABLE and the carrier's webhook 503 (both retry), never
// INTERNAL / 500; once the proxy is back, calls succeed.
func TestPostgresOutageAnswersUnavailable(t *testing.T) {
	var proxy *tcpproxy.Proxy
	s := startStackWith(t, stackOptions{serviceDB: func(dbURL string) string {
		u, err := url.Parse(dbURL)
		if err != nil {
			t.Fatalf("parse database url: %v", err)
		}
		if proxy, err = tcpproxy.New(u.Host); err != nil {
			t.Fatalf("start proxy: %v", err)
		}
		t.Cleanup(proxy.Stop)
		u.Host = proxy.Addr()
		return u.String()
	}})
	s.registerNumber(acct, acctNumber, carrierTok)
	ctx := context.Background()
	listKeywords := func() error {
		_, err := s.client.ListKeywords(ctx, &messagingv1.ListKeywordsRequest{AccountId: acct})
		return err
	}
	createKeyword := func() error {
		_, err := s.client.CreateKeyword(ctx, &messagingv1.CreateKeywordRequest{AccountId: acct,
			Keyword: &messagingv1.Keyword{Keyword: "JOIN", Groups: []string{"Events"}, Reply: "Welcome!"}})
		return err
	}

	proxy.Stop()
	for i := range 2 { // the first call may meet a pooled connection the outage cut
		if got := status.Code(listKeywords()); got != codes.Unavailable {
			t.Errorf("ListKeywords #%d during the outage: got %s, want %s", i+1, got, codes.Unavailable)
		}
		if got := status.Code(createKeyword()); got != codes.Unavailable {
			t.Errorf("CreateKeyword #%d during the outage: got %s, want %s", i+1, got, codes.Unavailable)
		}
	}
	if code, body := s.inbound(carrierTok, smsForm(janePhone, acctNumber, "hello", "SM1")); code != 503 {
		t.Errorf("inbound SMS during the outage: got %d %q, want 503 (the carrier retries)", code, body)
	}

	if err := proxy.Start(); err != nil {
		t.Fatalf("restart proxy: %v", err)
	}
	deadline := time.Now().Add(waitFor)
	for err := listKeywords(); err != nil; err = listKeywords() {
		if time.Now().After(deadline) {
			t.Fatalf("ListKeywords after the outage: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
	if err := createKeyword(); err != nil {
		t.Errorf("CreateKeyword after the outage: %v", err)
	}
	if code, body := s.inbound(carrierTok, smsForm(janePhone, acctNumber, "hello", "SM1")); code != 200 {
		t.Errorf("inbound SMS after the outage: got %d %q, want 200", code, body)
	}
}
