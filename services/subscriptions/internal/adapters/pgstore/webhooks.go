package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

const webhookColumns = `id, account_id, url, event_types, enabled, description, auth_kind, auth_header_name,
	auth_value_sealed, secret_sealed, prev_secret_sealed, prev_secret_expires_at, disabled_reason,
	version, created_at, updated_at, timeout_seconds, send_trace_context`

func sealContext(id, field string) string { return "webhook:" + id + ":" + field }

// sealed is a webhook row's ciphertexts.
type sealed struct {
	auth, secret, prev string
}

func (s *Store) seal(w domain.Webhook) (sealed, error) {
	var out sealed
	var err error
	if w.Auth.Kind != domain.AuthNone && w.Auth.Kind != "" {
		if out.auth, err = s.keys.Seal(w.Auth.Value, sealContext(w.ID, "auth")); err != nil {
			return sealed{}, err
		}
	}
	if out.secret, err = s.keys.Seal(w.Secret, sealContext(w.ID, "secret")); err != nil {
		return sealed{}, err
	}
	if w.PrevSecret != "" {
		if out.prev, err = s.keys.Seal(w.PrevSecret, sealContext(w.ID, "prev_secret")); err != nil {
			return sealed{}, err
		}
	}
	return out, nil
}

func (s *Store) scanWebhook(row pgx.Row) (domain.Webhook, error) {
	var w domain.Webhook
	var kind string
	var sl sealed
	var prevExp *time.Time
	var timeoutSeconds int32
	if err := row.Scan(&w.ID, &w.AccountID, &w.URL, &w.EventTypes, &w.Enabled, &w.Description, &kind,
		&w.Auth.HeaderName, &sl.auth, &sl.secret, &sl.prev, &prevExp, &w.DisabledReason, &w.Version,
		&w.CreateTime, &w.UpdateTime, &timeoutSeconds, &w.SendTraceContext); err != nil {
		return domain.Webhook{}, notFound(err)
	}
	w.Timeout = time.Duration(timeoutSeconds) * time.Second
	w.Auth.Kind = domain.AuthKind(kind)
	// One row sealed with a key that is no longer configured must not make every list (and the
	// dispatchers' config feed) fail: the row is returned marked unreadable, without secrets.
	open := func(field, sealedValue string, dst *string) {
		if sealedValue == "" || w.Unreadable != "" {
			return
		}
		v, err := s.keys.Open(sealedValue, sealContext(w.ID, field))
		if err != nil {
			w.Unreadable = fmt.Sprintf("%s: %v", field, err)
			w.Auth.Value, w.Secret, w.PrevSecret = "", "", ""
			return
		}
		*dst = v
	}
	open("auth", sl.auth, &w.Auth.Value)
	open("secret", sl.secret, &w.Secret)
	open("prev_secret", sl.prev, &w.PrevSecret)
	if prevExp != nil {
		w.PrevSecretExpireTime = *prevExp
	}
	return w, nil
}

// CreateWebhook inserts w and returns it as stored (version and times set), or
// domain.ErrNotFound when the account does not exist, or domain.ErrLimitReached when the account
// already has limit webhooks (limit <= 0: no limit). The account row is locked while counting, so
// concurrent creates of one account cannot exceed the limit.
func (s *Store) CreateWebhook(ctx context.Context, w domain.Webhook, limit int) (domain.Webhook, error) {
	sl, err := s.seal(w)
	if err != nil {
		return domain.Webhook{}, wrap("create webhook", err)
	}
	kind := w.Auth.Kind
	if kind == "" {
		kind = domain.AuthNone
	}
	var out domain.Webhook
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Lock first, count in the next statement: under READ COMMITTED a statement sees what
		// was committed before it started, so the count must not share the locking statement.
		var locked string
		err := tx.QueryRow(ctx, `SELECT id FROM accounts WHERE id = $1 FOR UPDATE`, w.AccountID).Scan(&locked)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("account %s: %w", w.AccountID, domain.ErrNotFound)
		}
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM webhooks WHERE account_id = $1`, w.AccountID).Scan(&n); err != nil {
			return err
		}
		if limit > 0 && n >= limit {
			return fmt.Errorf("%w: the account has %d webhooks, the most it may have", domain.ErrLimitReached, n)
		}
		out, err = s.scanWebhook(tx.QueryRow(ctx, `
			INSERT INTO webhooks (id, account_id, url, event_types, enabled, description, auth_kind,
				auth_header_name, auth_value_sealed, secret_sealed, timeout_seconds, send_trace_context)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			RETURNING `+webhookColumns,
			w.ID, w.AccountID, w.URL, w.EventTypes, w.Enabled, w.Description, string(kind),
			w.Auth.HeaderName, sl.auth, sl.secret, int32(w.Timeout/time.Second), w.SendTraceContext))
		return err
	})
	return out, wrap("create webhook", err)
}

// GetWebhook returns a webhook of the account (any account when accountID is empty).
func (s *Store) GetWebhook(ctx context.Context, accountID, id string) (domain.Webhook, error) {
	row := s.pool.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks
		WHERE id = $1 AND ($2 = '' OR account_id = $2)`, id, accountID)
	w, err := s.scanWebhook(row)
	return w, wrap("get webhook", err)
}

// WebhookFilter selects a page of webhooks ordered by id.
type WebhookFilter struct {
	// AccountID limits to one account; empty lists every account (internal callers only).
	AccountID string
	EventType string
	Enabled   *bool
	// AfterID is the last id of the previous page.
	AfterID string
	Limit   int
}

// ListWebhooks returns up to f.Limit webhooks with ids after f.AfterID.
func (s *Store) ListWebhooks(ctx context.Context, f WebhookFilter) ([]domain.Webhook, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks
		WHERE ($1 = '' OR account_id = $1)
		  AND ($2 = '' OR $2 = ANY (event_types))
		  AND ($3::boolean IS NULL OR enabled = $3)
		  AND id > $4
		ORDER BY id LIMIT $5`, f.AccountID, f.EventType, f.Enabled, f.AfterID, f.Limit)
	if err != nil {
		return nil, wrap("list webhooks", err)
	}
	defer rows.Close()
	var out []domain.Webhook
	for rows.Next() {
		w, err := s.scanWebhook(rows)
		if err != nil {
			return nil, wrap("list webhooks", err)
		}
		out = append(out, w)
	}
	return out, wrap("list webhooks", rows.Err())
}

// UpdateWebhook locks the webhook, lets change modify it, and writes it back with a new version.
// change may return an error to abort without writing.
func (s *Store) UpdateWebhook(ctx context.Context, accountID, id string, change func(*domain.Webhook) error) (domain.Webhook, error) {
	var out domain.Webhook
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		w, err := s.scanWebhook(tx.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks
			WHERE id = $1 AND ($2 = '' OR account_id = $2) FOR UPDATE`, id, accountID))
		if err != nil {
			return err
		}
		if w.Unreadable != "" {
			return domain.ErrSecretsUnreadable
		}
		wasEnabled := w.Enabled
		if err := change(&w); err != nil {
			return err
		}
		sl, err := s.seal(w)
		if err != nil {
			return err
		}
		kind := w.Auth.Kind
		if kind == "" {
			kind = domain.AuthNone
		}
		var prevExp *time.Time
		if w.PrevSecret != "" {
			prevExp = &w.PrevSecretExpireTime
		}
		out, err = s.scanWebhook(tx.QueryRow(ctx, `
			UPDATE webhooks SET url = $2, event_types = $3, enabled = $4, description = $5, auth_kind = $6,
				auth_header_name = $7, auth_value_sealed = $8, secret_sealed = $9, prev_secret_sealed = $10,
				prev_secret_expires_at = $11, disabled_reason = $12, timeout_seconds = $14,
				send_trace_context = $15,
				enabled_at = CASE WHEN $4 AND NOT $13 THEN now() ELSE enabled_at END,
				version = nextval('webhook_version'), updated_at = now()
			WHERE id = $1
			RETURNING `+webhookColumns,
			w.ID, w.URL, w.EventTypes, w.Enabled, w.Description, string(kind), w.Auth.HeaderName, sl.auth,
			sl.secret, sl.prev, prevExp, w.DisabledReason, wasEnabled, int32(w.Timeout/time.Second),
			w.SendTraceContext))
		return err
	})
	return out, wrap("update webhook", err)
}

// DeleteWebhook deletes a webhook of the account; its delivery log stays until retention.
func (s *Store) DeleteWebhook(ctx context.Context, accountID, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhooks WHERE id = $1 AND account_id = $2`, id, accountID)
	if err != nil {
		return wrap("delete webhook", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete webhook: %w", domain.ErrNotFound)
	}
	return nil
}
