// Package adapters connects campaigns to PostgreSQL (its schema and outbox) and to the
// contacts service over gRPC.
package adapters

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/customertext/webhooks/libs/event"
	"github.com/customertext/webhooks/libs/outbox"
	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/libs/sms"
	"github.com/customertext/webhooks/libs/telemetry"
	"github.com/customertext/webhooks/services/campaigns/internal/app"
	"github.com/customertext/webhooks/services/campaigns/internal/domain"
)

// Schema is campaigns' PostgreSQL schema.
const Schema = "campaigns"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or upgrades campaigns' tables, its outbox and the sandbox provider's table.
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
}

// NewStore returns a store; tracing carries the caller's trace into the events' headers.
func NewStore(pool *pgxpool.Pool, tracing *telemetry.Tracing) *Store {
	return &Store{pool: pool, tracing: tracing}
}

var _ app.Store = (*Store)(nil)

const campaignColumns = `id, account_id, name, body, target_groups, state, audience, sent, failed, skipped_opted_out,
	start_time, finish_time, create_time`

func scanCampaign(row pgx.Row) (domain.Campaign, error) {
	var c domain.Campaign
	var state string
	var start, finish *time.Time
	if err := row.Scan(&c.ID, &c.AccountID, &c.Name, &c.Body, &c.TargetGroups, &state, &c.Audience, &c.Sent, &c.Failed,
		&c.Skipped, &start, &finish, &c.CreateTime); err != nil {
		return domain.Campaign{}, err
	}
	c.State = domain.State(state)
	if start != nil {
		c.StartTime = start.UTC()
	}
	if finish != nil {
		c.FinishTime = finish.UTC()
	}
	c.CreateTime = c.CreateTime.UTC()
	return c, nil
}

// Create stores a draft.
func (s *Store) Create(ctx context.Context, c domain.Campaign) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO campaigns (id, account_id, name, body, target_groups, state, create_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, c.ID, c.AccountID, c.Name, c.Body, c.TargetGroups, string(c.State), c.CreateTime); err != nil {
		return fmt.Errorf("insert campaign: %w", err)
	}
	return nil
}

// Get returns app.ErrNotFound when the account has no such campaign.
func (s *Store) Get(ctx context.Context, accountID, id string) (domain.Campaign, error) {
	c, err := scanCampaign(s.pool.QueryRow(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE account_id = $1 AND id = $2`, accountID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Campaign{}, fmt.Errorf("campaign %s: %w", id, app.ErrNotFound)
	}
	if err != nil {
		return domain.Campaign{}, fmt.Errorf("select campaign: %w", err)
	}
	return c, nil
}

// StartSending moves a draft to SENDING and returns the campaign as it now is; a campaign that
// is already SENDING or SENT is returned unchanged.
func (s *Store) StartSending(ctx context.Context, accountID, id string, now time.Time) (domain.Campaign, error) {
	c, err := scanCampaign(s.pool.QueryRow(ctx, `UPDATE campaigns SET state = 'SENDING', start_time = $3
		WHERE account_id = $1 AND id = $2 AND state = 'DRAFT' RETURNING `+campaignColumns, accountID, id, now))
	if errors.Is(err, pgx.ErrNoRows) {
		return s.Get(ctx, accountID, id)
	}
	if err != nil {
		return domain.Campaign{}, fmt.Errorf("start sending: %w", err)
	}
	return c, nil
}

// Sending lists the campaigns in state SENDING, oldest first.
func (s *Store) Sending(ctx context.Context) ([]app.Ref, error) {
	rows, err := s.pool.Query(ctx, `SELECT account_id, id FROM campaigns WHERE state = 'SENDING' ORDER BY start_time, id`)
	if err != nil {
		return nil, fmt.Errorf("select sending campaigns: %w", err)
	}
	refs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.Ref, error) {
		var ref app.Ref
		err := r.Scan(&ref.AccountID, &ref.ID)
		return ref, err
	})
	if err != nil {
		return nil, fmt.Errorf("read sending campaigns: %w", err)
	}
	return refs, nil
}

// Lock takes a session advisory lock on the campaign so that one replica sends it at a time.
// ok is false when another session holds it. unlock releases the lock and the connection.
func (s *Store) Lock(ctx context.Context, id string) (unlock func(), ok bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("acquire connection for lock: %w", err)
	}
	key := lockKey(id)
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, fmt.Errorf("lock campaign: %w", err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
			// The session may still hold the lock: do not hand it to someone else.
			conn.Conn().Close(uctx) //nolint:errcheck // closing a broken connection
		}
		conn.Release()
	}, true, nil
}

func lockKey(id string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("campaign:" + id))
	return int64(h.Sum64())
}

// AudienceResolved reports whether the campaign's recipients are all written.
func (s *Store) AudienceResolved(ctx context.Context, id string) (bool, error) {
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT audience_resolved FROM campaigns WHERE id = $1`, id).Scan(&ok); err != nil {
		return false, fmt.Errorf("select audience_resolved: %w", err)
	}
	return ok, nil
}

// SaveAudience writes every recipient (pending or skipped) and marks the audience resolved, in
// one transaction.
func (s *Store) SaveAudience(ctx context.Context, id string, rs []app.Recipient) error {
	ids := make([]string, len(rs))
	phones := make([]string, len(rs))
	states := make([]string, len(rs))
	for i, r := range rs {
		ids[i], phones[i], states[i] = r.ContactID, r.Phone, string(r.Result)
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO recipients (campaign_id, contact_id, phone, state)
			SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[])
			ON CONFLICT (campaign_id, contact_id) DO NOTHING`, id, ids, phones, states); err != nil {
			return fmt.Errorf("insert recipients: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET audience_resolved = true WHERE id = $1`, id); err != nil {
			return fmt.Errorf("mark audience resolved: %w", err)
		}
		return nil
	})
}

// Pending returns up to limit recipients still waiting for the provider.
func (s *Store) Pending(ctx context.Context, id string, limit int) ([]app.Recipient, error) {
	rows, err := s.pool.Query(ctx, `SELECT contact_id, phone FROM recipients WHERE campaign_id = $1 AND state = 'pending'
		ORDER BY contact_id LIMIT $2`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("select pending recipients: %w", err)
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.Recipient, error) {
		x := app.Recipient{Result: domain.ResultPending}
		err := r.Scan(&x.ContactID, &x.Phone)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("read pending recipients: %w", err)
	}
	return rs, nil
}

// Record stores a recipient's result.
func (s *Store) Record(ctx context.Context, id string, r app.Recipient) error {
	if _, err := s.pool.Exec(ctx, `UPDATE recipients SET state = $3, message_id = $4, error = $5, update_time = now()
		WHERE campaign_id = $1 AND contact_id = $2 AND state = 'pending'`, id, r.ContactID, string(r.Result), r.MessageID, r.Error); err != nil {
		return fmt.Errorf("record recipient result: %w", err)
	}
	return nil
}

// Finish counts the results, marks the campaign SENT and adds the event built by build to the
// outbox, in one transaction. It returns false when the campaign was no longer SENDING.
func (s *Store) Finish(ctx context.Context, id string, now time.Time, build func(domain.Campaign) (event.Envelope, error)) (domain.Campaign, bool, error) {
	var out domain.Campaign
	finished := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var pending int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM recipients WHERE campaign_id = $1 AND state = 'pending'`, id).Scan(&pending); err != nil {
			return fmt.Errorf("count pending: %w", err)
		}
		if pending > 0 {
			return fmt.Errorf("finish campaign: %d recipients still pending", pending)
		}
		c, err := scanCampaign(tx.QueryRow(ctx, `UPDATE campaigns SET state = 'SENT', finish_time = $2,
			audience = (SELECT count(*) FROM recipients WHERE campaign_id = $1),
			sent = (SELECT count(*) FROM recipients WHERE campaign_id = $1 AND state = 'sent'),
			failed = (SELECT count(*) FROM recipients WHERE campaign_id = $1 AND state = 'failed'),
			skipped_opted_out = (SELECT count(*) FROM recipients WHERE campaign_id = $1 AND state = 'skipped')
			WHERE id = $1 AND state = 'SENDING' RETURNING `+campaignColumns, id, now))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("mark campaign sent: %w", err)
		}
		env, err := build(c)
		if err != nil {
			return err
		}
		h := nats.Header{}
		s.tracing.Inject(ctx, h)
		if err := outbox.Add(ctx, tx, Schema, env, h); err != nil {
			return err
		}
		out, finished = c, true
		return nil
	})
	if err != nil {
		return domain.Campaign{}, false, err
	}
	return out, finished, nil
}
