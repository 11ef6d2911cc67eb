package main

import (
	"context"
	"net/url"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/tcpproxy"
)

// TestPostgresOutageAnswersUnavailable stops a TCP proxy between the service and the real
// PostgreSQL: every call (the API key lookup included) answers UNAVAILABLE, which callers retry,
// never INTERNAL; once the proxy is back, calls succeed.
func TestPostgresOutageAnswersUnavailable(t *testing.T) {
	var proxy *tcpproxy.Proxy
	e := newEnvVia(t, func(dbURL string) string {
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
	})
	_, ctx := e.admin("Acme")
	id := e.createWebhook(ctx, validCreate()).GetWebhook().GetId()

	calls := map[string]func(context.Context) error{
		"CreateWebhook": func(context.Context) error {
			_, err := e.webhooks.CreateWebhook(ctx, validCreate())
			return err
		},
		"GetWebhook": func(context.Context) error {
			_, err := e.webhooks.GetWebhook(ctx, &webhooksv1.GetWebhookRequest{Id: id})
			return err
		},
		"ListWebhookConfigs (service credential)": func(context.Context) error {
			_, err := e.configs.ListWebhookConfigs(e.service(), &webhooksv1.ListWebhookConfigsRequest{})
			return err
		},
	}
	proxy.Stop()
	for name, call := range calls {
		for i := range 2 { // the first call may meet a pooled connection the outage cut
			err := call(context.Background())
			if got := status.Code(err); got != codes.Unavailable {
				t.Errorf("%s #%d during the outage: got %s (%v), want %s", name, i+1, got, err, codes.Unavailable)
			}
		}
	}
	if err := proxy.Start(); err != nil {
		t.Fatalf("restart proxy: %v", err)
	}
	eventually(t, "calls succeed after the outage", func() error {
		for _, call := range calls {
			if err := call(context.Background()); err != nil {
				return err
			}
		}
		return nil
	})
}

// TestNATSOutageAnswersUnavailable stops the nats-server: a redelivery, which needs JetStream,
// answers UNAVAILABLE (retry later), while calls that need only PostgreSQL keep working.
func TestNATSOutageAnswersUnavailable(t *testing.T) {
	e := newEnv(t)
	accountID, ctx := e.admin("Acme")
	id := e.createWebhook(ctx, validCreate()).GetWebhook().GetId()
	e.publishAttempt(t, record(accountID, id, "del_x", 1, webhooksv1.Outcome_OUTCOME_DEAD_LETTERED, time.Now()))
	eventually(t, "attempt listed", func() error {
		resp, err := e.webhooks.ListDeliveryAttempts(ctx, &webhooksv1.ListDeliveryAttemptsRequest{})
		if err != nil || len(resp.GetAttempts()) != 1 {
			return errNotYet
		}
		return nil
	})
	e.ns.Shutdown()
	_, err := e.webhooks.RedeliverDelivery(ctx, &webhooksv1.RedeliverDeliveryRequest{DeliveryId: "del_x"})
	if got := status.Code(err); got != codes.Unavailable {
		t.Errorf("RedeliverDelivery with NATS down: got %s (%v), want %s", got, err, codes.Unavailable)
	}
	if _, err := e.webhooks.GetWebhook(ctx, &webhooksv1.GetWebhookRequest{Id: id}); err != nil {
		t.Errorf("GetWebhook with NATS down: %v, want it served from PostgreSQL", err)
	}
}
