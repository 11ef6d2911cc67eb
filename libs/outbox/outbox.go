// Package outbox implements the transactional outbox: Add writes an event in the same PostgreSQL
// transaction as the domain change, and Relay publishes pending rows to JetStream with
// Nats-Msg-Id = event id, deleting them only after JetStream acknowledged them. A relay that
// crashes between the publish and the delete re-publishes, and JetStream's duplicate window drops
// the copy; while NATS is unreachable rows simply wait.
package outbox

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/customertext/webhooks/libs/event"
	"github.com/customertext/webhooks/libs/identity"
	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/libs/streams"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates the outbox table in schema.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	return postgres.Migrate(ctx, pool, schema, migrations, "migrations")
}

// Channel is the LISTEN/NOTIFY channel that wakes the relay of schema.
func Channel(schema string) string { return "outbox_" + schema }

// Event is one event to add, with the trace headers to carry along.
type Event struct {
	Envelope event.Envelope
	Headers  nats.Header
}

// BulkThreshold: the events of an AddMany call of more than this many are bulk rows, which the
// relay publishes on its own, beside the other rows (see Relay), so that one account's import
// of 100,000 contacts does not hold back every other account's events in the outbox.
const BulkThreshold = 100

// AddMany stores events in the outbox inside tx in one statement, in their order, and wakes
// the relay when tx commits: what a bulk producer (an import of thousands of rows) uses instead
// of a round trip per event. Same requirements as Add.
func AddMany(ctx context.Context, tx pgx.Tx, schema string, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	ids, subjects, headers := make([]string, len(events)), make([]string, len(events)), make([]string, len(events))
	bodies := make([][]byte, len(events))
	for i, e := range events {
		if err := checkIDs(e.Envelope); err != nil {
			return err
		}
		body, err := e.Envelope.Marshal()
		if err != nil {
			return fmt.Errorf("add to outbox: %w", err)
		}
		h := []byte("{}")
		if e.Headers != nil {
			if h, err = json.Marshal(e.Headers); err != nil {
				return fmt.Errorf("add to outbox: headers: %w", err)
			}
		}
		ids[i], subjects[i], bodies[i], headers[i] = e.Envelope.EventID, streams.EventSubject(e.Envelope.AccountID, e.Envelope.Event), body, string(h)
	}
	// WITH ORDINALITY keeps the events' order in seq, which is the relay's order.
	if _, err := tx.Exec(ctx, `WITH ins AS (
			INSERT INTO outbox (event_id, subject, body, headers, bulk)
			SELECT id, subj, body, h::jsonb, $6 FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[])
				WITH ORDINALITY AS x(id, subj, body, h, n) ORDER BY n
			RETURNING 1)
		SELECT pg_notify($5, '') WHERE EXISTS (SELECT 1 FROM ins)`,
		ids, subjects, bodies, headers, Channel(schema), len(events) > BulkThreshold); err != nil {
		return fmt.Errorf("add to outbox: %w", err)
	}
	return nil
}

// Add stores env in the outbox inside tx, with the trace headers to carry along, and wakes the
// relay when tx commits. It must be called on a transaction whose search_path is the service's
// schema (the pools from postgres.Open are).
func Add(ctx context.Context, tx pgx.Tx, schema string, env event.Envelope, headers nats.Header) error {
	if err := checkIDs(env); err != nil {
		return err
	}
	body, err := env.Marshal()
	if err != nil {
		return fmt.Errorf("add to outbox: %w", err)
	}
	h, err := json.Marshal(headers)
	if err != nil {
		return fmt.Errorf("add to outbox: headers: %w", err)
	}
	if headers == nil {
		h = []byte("{}")
	}
	// One round trip: the row and the wake-up (delivered at commit; PostgreSQL folds repeated
	// notifications of one transaction into one).
	if _, err := tx.Exec(ctx, `WITH ins AS (
			INSERT INTO outbox (event_id, subject, body, headers) VALUES ($1, $2, $3, $4) RETURNING 1)
		SELECT pg_notify($5, '') FROM ins`,
		env.EventID, streams.EventSubject(env.AccountID, env.Event), body, h, Channel(schema)); err != nil {
		return fmt.Errorf("add to outbox: %w", err)
	}
	return nil
}

// checkIDs refuses an envelope whose ids could not travel: the account id is a subject token and
// the event id the Nats-Msg-Id of the relay's publish and part of every delivery's ids.
func checkIDs(env event.Envelope) error {
	if err := identity.Account(env.AccountID); err != nil {
		return fmt.Errorf("add to outbox: %w", err)
	}
	if err := identity.Event(env.EventID); err != nil {
		return fmt.Errorf("add to outbox: %w", err)
	}
	return nil
}
