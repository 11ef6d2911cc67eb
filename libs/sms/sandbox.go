package sms

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/customertext/webhooks/libs/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrateSandbox creates the sandbox's table in schema (the caller's own schema).
func MigrateSandbox(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	return postgres.Migrate(ctx, pool, schema, migrations, "migrations")
}

// e164 is the shape of an E.164 number; the sandbox refuses anything else, as a carrier would.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// Sandbox is a Provider that stores messages in the sandbox_messages table of the pool's schema
// (the pool's search_path) instead of sending them.
type Sandbox struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// NewSandbox returns a sandbox provider writing through pool.
func NewSandbox(pool *pgxpool.Pool) *Sandbox {
	return &Sandbox{pool: pool, now: time.Now}
}

// Send records m. A message whose idempotency key was already used is not recorded again; the
// first record is returned with Duplicate set.
func (s *Sandbox) Send(ctx context.Context, m Message) (Sent, error) {
	if err := validate(m); err != nil {
		return Sent{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Sent{}, fmt.Errorf("sandbox send: id: %w", err)
	}
	var key *string
	if m.IdempotencyKey != "" {
		key = &m.IdempotencyKey
	}
	out := Sent{ID: "sms_" + id.String(), AccountID: m.AccountID, From: m.From, To: m.To, Body: m.Body, SendTime: s.now().UTC()}
	tag, err := s.pool.Exec(ctx, `INSERT INTO sandbox_messages (id, account_id, sender, recipient, body, idempotency_key, send_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (idempotency_key) DO NOTHING`,
		out.ID, out.AccountID, out.From, out.To, out.Body, key, out.SendTime)
	if err != nil {
		return Sent{}, fmt.Errorf("sandbox send: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return out, nil
	}
	prev, err := s.byKey(ctx, m.IdempotencyKey)
	if err != nil {
		return Sent{}, fmt.Errorf("sandbox send: %w", err)
	}
	prev.Duplicate = true
	return prev, nil
}

func validate(m Message) error {
	switch {
	case m.AccountID == "":
		return fmt.Errorf("sandbox send: account id is required: %w", ErrInvalidMessage)
	case !e164.MatchString(m.To):
		return fmt.Errorf("sandbox send: destination %q is not an E.164 number: %w", m.To, ErrInvalidMessage)
	case m.From != "" && !e164.MatchString(m.From):
		return fmt.Errorf("sandbox send: sender %q is not an E.164 number: %w", m.From, ErrInvalidMessage)
	case m.Body == "":
		return fmt.Errorf("sandbox send: empty body: %w", ErrInvalidMessage)
	case utf8.RuneCountInString(m.Body) > MaxBodyChars:
		return fmt.Errorf("sandbox send: body longer than %d characters: %w", MaxBodyChars, ErrInvalidMessage)
	}
	return nil
}

func (s *Sandbox) byKey(ctx context.Context, key string) (Sent, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, account_id, sender, recipient, body, send_time
		FROM sandbox_messages WHERE idempotency_key = $1`, key)
	if err != nil {
		return Sent{}, fmt.Errorf("read by idempotency key: %w", err)
	}
	sent, err := pgx.CollectExactlyOneRow(rows, scanSent)
	if errors.Is(err, pgx.ErrNoRows) {
		return Sent{}, errors.New("read by idempotency key: conflicting row vanished")
	}
	if err != nil {
		return Sent{}, fmt.Errorf("read by idempotency key: %w", err)
	}
	return sent, nil
}

// List returns the account's recorded messages, oldest first; to, when not empty, keeps only
// messages to that number.
func (s *Sandbox) List(ctx context.Context, accountID, to string) ([]Sent, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, account_id, sender, recipient, body, send_time
		FROM sandbox_messages WHERE account_id = $1 AND ($2 = '' OR recipient = $2)
		ORDER BY send_time, id`, accountID, to)
	if err != nil {
		return nil, fmt.Errorf("list sandbox messages: %w", err)
	}
	sent, err := pgx.CollectRows(rows, scanSent)
	if err != nil {
		return nil, fmt.Errorf("list sandbox messages: %w", err)
	}
	return sent, nil
}

func scanSent(row pgx.CollectableRow) (Sent, error) {
	var m Sent
	err := row.Scan(&m.ID, &m.AccountID, &m.From, &m.To, &m.Body, &m.SendTime)
	m.SendTime = m.SendTime.UTC()
	return m, err
}
