package outbox_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/customertext/webhooks/libs/event"
	eventsv1 "github.com/customertext/webhooks/libs/gen/customertext/events/v1"
	"github.com/customertext/webhooks/libs/identity"
	"github.com/customertext/webhooks/libs/outbox"
	"github.com/customertext/webhooks/libs/pgtest"
	"github.com/customertext/webhooks/libs/postgres"
)

// TestAddRefusesIDsThatCannotTravel: an envelope whose event or account id breaks the identity
// rule is refused and stores nothing (the relay would publish it on a broken subject forever).
func TestAddRefusesIDsThatCannotTravel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, pgtest.NewDatabase(t), schema, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := outbox.Migrate(ctx, pool, schema); err != nil {
		t.Fatal(err)
	}
	env, err := event.New("acc_1", &eventsv1.NewContact{ContactId: "c1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(e *event.Envelope){
		"event id of 5000 bytes": func(e *event.Envelope) { e.EventID = "evt_" + strings.Repeat("x", 5000) },
		"event id with a dot":    func(e *event.Envelope) { e.EventID = "evt_a.b" },
		"account id with space":  func(e *event.Envelope) { e.AccountID = "acc 1" },
	}
	for name, mutate := range bad {
		e := env
		mutate(&e)
		for _, add := range []func(tx pgx.Tx) error{
			func(tx pgx.Tx) error { return outbox.Add(ctx, tx, schema, e, nil) },
			func(tx pgx.Tx) error {
				return outbox.AddMany(ctx, tx, schema, []outbox.Event{{Envelope: env}, {Envelope: e}})
			},
		} {
			err := pgx.BeginFunc(ctx, pool, add)
			if !errors.Is(err, identity.ErrInvalid) {
				t.Errorf("%s: got %v, want an identity error", name, err)
			}
		}
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("outbox rows: got %d, want 0", n)
	}
	if _, err := event.New("acc.1", &eventsv1.NewContact{ContactId: "c1"}, time.Now()); !errors.Is(err, identity.ErrInvalid) {
		t.Errorf("event.New with account acc.1: got %v, want an identity error", err)
	}
}
