package natsbus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/customertext/webhooks/libs/identity"
	"github.com/customertext/webhooks/libs/natsserver"
	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// TestRedeliver: each redelivery is a new chain (fresh generation in its Nats-Msg-Id); a publish
// acked as a duplicate stored nothing and is an error; ids outside the identity rule publish
// nothing.
func TestRedeliver(t *testing.T) {
	t.Parallel()
	ns, err := natsserver.Start(natsserver.Options{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := streams.Ensure(ctx, js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	d := domain.Delivery{ID: "del_e_wh", WebhookID: "wh", AccountID: "acc", EventID: "evt_e", EventType: "new_contact", Payload: []byte(`{}`)}
	r := NewRedeliverer(js)
	for range 2 {
		if err := r.Redeliver(ctx, d, time.Now()); err != nil {
			t.Fatalf("redeliver: %v", err)
		}
	}
	s, err := js.Stream(ctx, streams.Deliveries)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Errorf("jobs stored: got %d, want 2 (two chains)", info.State.Msgs)
	}

	r.generation = func() string { return "same" }
	if err := r.Redeliver(ctx, d, time.Now()); err != nil {
		t.Fatalf("redeliver: %v", err)
	}
	if err := r.Redeliver(ctx, d, time.Now()); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("redelivery acked as a duplicate: got %v, want an error", err)
	}

	bad := d
	bad.ID = "del_a.b"
	if err := r.Redeliver(ctx, bad, time.Now()); !errors.Is(err, identity.ErrInvalid) {
		t.Errorf("delivery id del_a.b: got %v, want an identity error", err)
	}
	if info, _ := s.Info(ctx); info.State.Msgs != 3 {
		t.Errorf("jobs stored: got %d, want 3 (nothing for the duplicate nor the invalid id)", info.State.Msgs)
	}
}
