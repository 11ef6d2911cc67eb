// Package adapters connects messaging to PostgreSQL (its schema and outbox) and to the
// contacts service over gRPC.
package adapters

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/customertext/webhooks/libs/event"
	"github.com/customertext/webhooks/libs/outbox"
	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/libs/secrets"
	"github.com/customertext/webhooks/libs/sms"
	"github.com/customertext/webhooks/libs/telemetry"
	"github.com/customertext/webhooks/services/messaging/internal/app"
	"github.com/customertext/webhooks/services/messaging/internal/domain"
)

// Schema is messaging's PostgreSQL schema.
const Schema = "messaging"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or upgrades messaging's tables, its outbox and the sandbox provider's table.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if err := postgres.Migrate(ctx, pool, Schema, migrations, "migrations"); err != nil {
		return err
	}
	if err := outbox.Migrate(ctx, pool, Schema); err != nil {
		return err
	}
	return sms.MigrateSandbox(ctx, pool, Schema)
}

// Store implements app.Store on a pool whose search_path is Schema.
type Store struct {
	pool    *pgxpool.Pool
	tracing *telemetry.Tracing
	keys    *secrets.Keyring
}

// NewStore returns a store; tracing carries the caller's trace into the events' headers; keys
// encrypt carrier tokens at rest.
func NewStore(pool *pgxpool.Pool, tracing *telemetry.Tracing, keys *secrets.Keyring) *Store {
	return &Store{pool: pool, tracing: tracing, keys: keys}
}

func tokenContext(phone string) string { return "number:" + phone }

var _ app.Store = (*Store)(nil)

// RegisterNumber inserts the number or replaces its token when the account already owns it.
func (s *Store) RegisterNumber(ctx context.Context, n app.Number) error {
	sealed, err := s.keys.Seal(n.CarrierToken, tokenContext(n.Phone))
	if err != nil {
		return fmt.Errorf("seal carrier token: %w", err)
	}
	var owner string
	err = s.pool.QueryRow(ctx, `INSERT INTO numbers (phone_number, account_id, carrier_auth_token) VALUES ($1, $2, $3)
		ON CONFLICT (phone_number) DO UPDATE SET carrier_auth_token = EXCLUDED.carrier_auth_token, update_time = now()
		WHERE numbers.account_id = EXCLUDED.account_id
		RETURNING account_id`, n.Phone, n.AccountID, sealed).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("phone_number is registered to another account: %w", app.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("upsert number: %w", err)
	}
	return nil
}

// NumberByPhone returns app.ErrNotFound for an unregistered number.
func (s *Store) NumberByPhone(ctx context.Context, phone string) (app.Number, error) {
	n := app.Number{Phone: phone}
	var sealed string
	err := s.pool.QueryRow(ctx, `SELECT account_id, carrier_auth_token FROM numbers WHERE phone_number = $1`, phone).
		Scan(&n.AccountID, &sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return app.Number{}, fmt.Errorf("number is not registered: %w", app.ErrNotFound)
	}
	if err != nil {
		return app.Number{}, fmt.Errorf("select number: %w", err)
	}
	if n.CarrierToken, err = s.keys.Open(sealed, tokenContext(phone)); err != nil {
		return app.Number{}, fmt.Errorf("carrier token of a registered number: %w", err)
	}
	return n, nil
}

// CreateKeyword returns app.ErrAlreadyExists when the account already has the word.
func (s *Store) CreateKeyword(ctx context.Context, accountID string, k domain.Keyword) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO keywords (account_id, keyword, groups, reply) VALUES ($1, $2, $3, $4)`,
		accountID, k.Word, k.Groups, k.Reply)
	if postgres.IsUniqueViolation(err) {
		return fmt.Errorf("keyword %q: %w", k.Word, app.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("insert keyword: %w", err)
	}
	return nil
}

// Keywords returns the account's keywords ordered by word.
func (s *Store) Keywords(ctx context.Context, accountID string) ([]domain.Keyword, error) {
	rows, err := s.pool.Query(ctx, `SELECT keyword, groups, reply FROM keywords WHERE account_id = $1 ORDER BY keyword`, accountID)
	if err != nil {
		return nil, fmt.Errorf("select keywords: %w", err)
	}
	ks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Keyword, error) {
		var k domain.Keyword
		err := r.Scan(&k.Word, &k.Groups, &k.Reply)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("read keywords: %w", err)
	}
	return ks, nil
}

// InboundDone implements app.Store.
func (s *Store) InboundDone(ctx context.Context, accountID, messageSid string) (bool, error) {
	var done bool
	err := s.pool.QueryRow(ctx, `SELECT done FROM inbound_messages WHERE account_id = $1 AND message_sid = $2`,
		accountID, messageSid).Scan(&done)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("select inbound: %w", err)
	}
	return done, nil
}

// BeginInbound implements app.Store.
func (s *Store) BeginInbound(ctx context.Context, rec app.InboundRecord) (app.InboundRecord, error) {
	if _, err := s.pool.Exec(ctx, `INSERT INTO inbound_messages (account_id, message_sid, message_id, contact_id,
		sender, recipient, body, kind, word, contact_created, received_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (account_id, message_sid) DO NOTHING`,
		rec.AccountID, rec.MessageSid, rec.MessageID, rec.ContactID, rec.From, rec.To, rec.Body, string(rec.Kind),
		rec.Word, rec.ContactCreated, rec.ReceivedAt); err != nil {
		return app.InboundRecord{}, fmt.Errorf("insert inbound: %w", err)
	}
	out := app.InboundRecord{AccountID: rec.AccountID, MessageSid: rec.MessageSid}
	var kind string
	err := s.pool.QueryRow(ctx, `SELECT message_id, contact_id, sender, recipient, body, kind, word, contact_created,
		opt_changed, received_at FROM inbound_messages WHERE account_id = $1 AND message_sid = $2`,
		rec.AccountID, rec.MessageSid).Scan(&out.MessageID, &out.ContactID, &out.From, &out.To, &out.Body, &kind,
		&out.Word, &out.ContactCreated, &out.OptChanged, &out.ReceivedAt)
	if err != nil {
		return app.InboundRecord{}, fmt.Errorf("select inbound: %w", err)
	}
	out.Kind = domain.Kind(kind)
	out.ContactCreated = out.ContactCreated || rec.ContactCreated
	out.ReceivedAt = out.ReceivedAt.UTC()
	return out, nil
}

// MarkOptChanged implements app.Store.
func (s *Store) MarkOptChanged(ctx context.Context, accountID, messageSid string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE inbound_messages SET opt_changed = true WHERE account_id = $1 AND message_sid = $2`,
		accountID, messageSid); err != nil {
		return fmt.Errorf("update inbound: %w", err)
	}
	return nil
}

// CompleteInbound implements app.Store.
func (s *Store) CompleteInbound(ctx context.Context, accountID, messageSid string, events []event.Envelope) (bool, error) {
	completed := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE inbound_messages SET done = true WHERE account_id = $1 AND message_sid = $2 AND NOT done`,
			accountID, messageSid)
		if err != nil {
			return fmt.Errorf("mark inbound done: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		if err := addEvents(ctx, tx, s.tracing, events); err != nil {
			return err
		}
		completed = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return completed, nil
}

func addEvents(ctx context.Context, tx pgx.Tx, tracing *telemetry.Tracing, events []event.Envelope) error {
	for _, env := range events {
		h := nats.Header{}
		tracing.Inject(ctx, h)
		if err := outbox.Add(ctx, tx, Schema, env, h); err != nil {
			return err
		}
	}
	return nil
}
