package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// Disable reasons the attempt writer records.
const (
	ReasonGone = "endpoint returned 410 Gone"
)

// FailingReason is the disabled_reason of a webhook auto-disabled after span without success.
func FailingReason(span time.Duration) string {
	return fmt.Sprintf("no successful delivery for %s and the latest attempts keep failing", humanDuration(span))
}

func humanDuration(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

// Disabled is a webhook the writer disabled, and why ("gone" or "failing").
type Disabled struct {
	WebhookID string
	Kind      string
}

// WriteAttempts stores a batch of attempt records in one transaction: the attempts (one
// multi-row insert, idempotent on the attempt id), the deliveries' latest state, the webhooks'
// last success, and disables webhooks that answered 410 Gone or that kept failing without a
// success for autoDisableAfter. It returns the webhooks it disabled, to be announced after the
// commit.
func (s *Store) WriteAttempts(ctx context.Context, batch []domain.Attempt, autoDisableAfter time.Duration) ([]Disabled, error) {
	batch, deferrals := splitDeferrals(batch)
	if len(batch) == 0 && len(deferrals) == 0 {
		return nil, nil
	}
	if err := s.ensurePartitionsFor(ctx, batch); err != nil {
		return nil, err
	}
	var disabled []Disabled
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if len(batch) == 0 {
			return deferRetries(ctx, tx, deferrals)
		}
		inserted, err := insertAttempts(ctx, tx, batch)
		if err != nil {
			return err
		}
		// After the inserts: a deferral may concern an attempt of the same batch.
		if err := deferRetries(ctx, tx, deferrals); err != nil {
			return err
		}
		// Only attempts seen for the first time count: a record redelivered by JetStream after
		// a crash between commit and ack changes nothing.
		real := make([]domain.Attempt, 0, len(batch))
		for _, a := range batch {
			if !a.Test && inserted[a.ID] {
				real = append(real, a)
				delete(inserted, a.ID)
			}
		}
		if len(real) == 0 {
			return nil
		}
		if err := upsertDeliveries(ctx, tx, real); err != nil {
			return err
		}
		disabled, err = applyWebhookEffects(ctx, tx, real, autoDisableAfter)
		return err
	})
	if err != nil {
		return nil, wrap("write attempts", err)
	}
	return disabled, nil
}

// splitDeferrals separates the deferral corrections from the attempts.
func splitDeferrals(batch []domain.Attempt) (attempts, deferrals []domain.Attempt) {
	for _, a := range batch {
		if a.Deferral {
			deferrals = append(deferrals, a)
		} else {
			attempts = append(attempts, a)
		}
	}
	return attempts, deferrals
}

// deferRetries moves the next_retry_at of retrying attempts forward to where the dispatcher
// deferred their retry (never backward: corrections may arrive out of order).
func deferRetries(ctx context.Context, tx pgx.Tx, deferrals []domain.Attempt) error {
	if len(deferrals) == 0 {
		return nil
	}
	times, ids, next := make([]time.Time, len(deferrals)), make([]string, len(deferrals)), make([]time.Time, len(deferrals))
	for i, d := range deferrals {
		times[i], ids[i], next[i] = d.Time, d.ID, d.NextRetryTime
	}
	_, err := tx.Exec(ctx, `
		UPDATE delivery_attempts a SET next_retry_at = x.r
		FROM unnest($1::timestamptz[], $2::text[], $3::timestamptz[]) AS x(t, id, r)
		WHERE a.attempt_time = x.t AND a.attempt_id = x.id AND a.outcome = $4
		  AND (a.next_retry_at IS NULL OR a.next_retry_at < x.r)`,
		times, ids, next, int16(domain.OutcomeRetrying))
	if err != nil {
		return fmt.Errorf("defer retries: %w", err)
	}
	return nil
}

// InsertTestAttempt records a test event's attempt in the log (no delivery, no side effects).
func (s *Store) InsertTestAttempt(ctx context.Context, a domain.Attempt) error {
	a.Test = true
	if err := s.ensurePartitionsFor(ctx, []domain.Attempt{a}); err != nil {
		return err
	}
	_, err := insertAttempts(ctx, s.pool, []domain.Attempt{a})
	return wrap("insert test attempt", err)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// insertAttempts inserts the batch in one statement and returns the ids of the rows that were
// new.
func insertAttempts(ctx context.Context, db querier, batch []domain.Attempt) (map[string]bool, error) {
	n := len(batch)
	var (
		times    = make([]time.Time, n)
		ids      = make([]string, n)
		dels     = make([]string, n)
		accounts = make([]string, n)
		hooks    = make([]string, n)
		events   = make([]string, n)
		types    = make([]string, n)
		urls     = make([]string, n)
		nums     = make([]int32, n)
		outcomes = make([]int16, n)
		tests    = make([]bool, n)
		headers  = make([]string, n)
		statuses = make([]int32, n)
		bodies   = make([]string, n)
		durs     = make([]int64, n)
		errs     = make([]string, n)
		retries  = make([]pgtype.Timestamptz, n)
	)
	for i, a := range batch {
		h := a.RequestHeaders
		if h == nil {
			h = map[string]string{}
		}
		hj, err := json.Marshal(h)
		if err != nil {
			return nil, fmt.Errorf("encode headers: %w", err)
		}
		times[i], ids[i], dels[i], accounts[i], hooks[i] = a.Time, a.ID, a.DeliveryID, a.AccountID, a.WebhookID
		events[i], types[i], urls[i], nums[i], outcomes[i] = a.EventID, a.EventType, a.URL, a.Attempt, int16(a.Outcome)
		tests[i], headers[i], statuses[i], bodies[i], durs[i], errs[i] = a.Test, string(hj), a.ResponseStatus, a.ResponseBody, a.DurationMS, a.Error
		retries[i] = pgtype.Timestamptz{Time: a.NextRetryTime, Valid: !a.NextRetryTime.IsZero()}
	}
	rows, err := db.Query(ctx, `
		INSERT INTO delivery_attempts (attempt_time, attempt_id, delivery_id, account_id, webhook_id, event_id,
			event_type, url, attempt, outcome, test, request_headers, response_status, response_body,
			duration_ms, error, next_retry_at)
		SELECT t, id, d, acc, wh, ev, et, u, n, o, te, h::jsonb, st, b, du, e, r
		FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::int[], $10::smallint[], $11::boolean[], $12::text[], $13::int[], $14::text[],
			$15::bigint[], $16::text[], $17::timestamptz[])
			AS x(t, id, d, acc, wh, ev, et, u, n, o, te, h, st, b, du, e, r)
		ON CONFLICT DO NOTHING
		RETURNING attempt_id`,
		times, ids, dels, accounts, hooks, events, types, urls, nums, outcomes, tests, headers, statuses,
		bodies, durs, errs, retries)
	if err != nil {
		return nil, fmt.Errorf("insert attempts: %w", err)
	}
	newIDs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("insert attempts: %w", err)
	}
	inserted := make(map[string]bool, len(newIDs))
	for _, id := range newIDs {
		inserted[id] = true
	}
	return inserted, nil
}

// latestPer returns, per key, the batch's latest attempt (highest attempt number, then time).
func latestPer(batch []domain.Attempt, key func(domain.Attempt) string) []domain.Attempt {
	m := map[string]domain.Attempt{}
	for _, a := range batch {
		k := key(a)
		cur, ok := m[k]
		if !ok || a.Time.After(cur.Time) || (a.Time.Equal(cur.Time) && a.Attempt > cur.Attempt) {
			m[k] = a
		}
	}
	out := make([]domain.Attempt, 0, len(m))
	for _, a := range m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out
}

func upsertDeliveries(ctx context.Context, tx pgx.Tx, batch []domain.Attempt) error {
	latest := latestPer(batch, func(a domain.Attempt) string { return a.DeliveryID })
	count := map[string]int32{}
	for _, a := range batch {
		count[a.DeliveryID]++
	}
	n := len(latest)
	ids, hooks, accounts, events, types := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	payloads, outcomes, nums, times := make([][]byte, n), make([]int16, n), make([]int32, n), make([]time.Time, n)
	for i, a := range latest {
		p := a.Payload
		if p == nil {
			p = []byte{}
		}
		ids[i], hooks[i], accounts[i], events[i], types[i] = a.DeliveryID, a.WebhookID, a.AccountID, a.EventID, a.EventType
		payloads[i], outcomes[i], nums[i], times[i] = p, int16(a.Outcome), count[a.DeliveryID], a.Time
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO deliveries AS d (delivery_id, webhook_id, account_id, event_id, event_type, payload, outcome,
			attempts, last_attempt_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[],
			$7::smallint[], $8::int[], $9::timestamptz[])
		ON CONFLICT (delivery_id) DO UPDATE SET
			payload = CASE WHEN length(excluded.payload) > 0 THEN excluded.payload ELSE d.payload END,
			outcome = CASE WHEN excluded.last_attempt_at >= d.last_attempt_at THEN excluded.outcome ELSE d.outcome END,
			attempts = d.attempts + excluded.attempts,
			last_attempt_at = greatest(d.last_attempt_at, excluded.last_attempt_at)`,
		ids, hooks, accounts, events, types, payloads, outcomes, nums, times)
	return wrap("upsert deliveries", err)
}

func applyWebhookEffects(ctx context.Context, tx pgx.Tx, batch []domain.Attempt, autoDisableAfter time.Duration) ([]Disabled, error) {
	var okIDs []string
	var okTimes []time.Time
	var goneIDs, failingIDs []string
	for _, a := range latestPer(batch, func(a domain.Attempt) string { return a.WebhookID }) {
		if a.Outcome == domain.OutcomeSucceeded {
			okIDs, okTimes = append(okIDs, a.WebhookID), append(okTimes, a.Time)
		} else {
			failingIDs = append(failingIDs, a.WebhookID)
		}
	}
	seen := map[string]bool{}
	for _, a := range batch {
		if a.Gone && !seen[a.WebhookID] {
			seen[a.WebhookID] = true
			goneIDs = append(goneIDs, a.WebhookID)
		}
	}
	if len(okIDs) > 0 {
		if _, err := tx.Exec(ctx, `
			UPDATE webhooks w SET last_success_at = greatest(coalesce(w.last_success_at, '-infinity'), x.t)
			FROM unnest($1::text[], $2::timestamptz[]) AS x(id, t) WHERE w.id = x.id`, okIDs, okTimes); err != nil {
			return nil, fmt.Errorf("record last success: %w", err)
		}
	}
	var out []Disabled
	disable := func(ids []string, reason, kind, extra string, args ...any) error {
		if len(ids) == 0 {
			return nil
		}
		rows, err := tx.Query(ctx, `
			UPDATE webhooks SET enabled = false, disabled_reason = $2, version = nextval('webhook_version'),
				updated_at = now()
			WHERE id = ANY ($1) AND enabled`+extra+` RETURNING id`, append([]any{ids, reason}, args...)...)
		if err != nil {
			return fmt.Errorf("disable webhooks: %w", err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("disable webhooks: %w", err)
		}
		for _, id := range got {
			out = append(out, Disabled{WebhookID: id, Kind: kind})
		}
		return nil
	}
	if err := disable(goneIDs, ReasonGone, "gone", ""); err != nil {
		return nil, err
	}
	if autoDisableAfter > 0 {
		err := disable(failingIDs, FailingReason(autoDisableAfter), "failing",
			` AND greatest(coalesce(last_success_at, '-infinity'), enabled_at) < now() - $3::interval`, autoDisableAfter)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ListAttempts returns up to limit attempts of f.AccountID, newest first, before the cursor
// (attempt time and id of the previous page's last row; zero for the first page).
func (s *Store) ListAttempts(ctx context.Context, f domain.AttemptFilter, afterTime time.Time, afterID string, limit int) ([]domain.Attempt, error) {
	start := pgtype.Timestamptz{Time: f.Start, Valid: !f.Start.IsZero()}
	end := pgtype.Timestamptz{Time: f.End, Valid: !f.End.IsZero()}
	cursor := pgtype.Timestamptz{Time: afterTime, Valid: !afterTime.IsZero()}
	rows, err := s.pool.Query(ctx, `
		SELECT attempt_id, delivery_id, account_id, webhook_id, event_id, event_type, url, attempt, outcome, test,
			request_headers, response_status, response_body, duration_ms, error, attempt_time, next_retry_at
		FROM delivery_attempts
		WHERE account_id = $1
		  AND ($2 = '' OR webhook_id = $2)
		  AND ($3 = '' OR event_type = $3)
		  AND ($4 = '' OR event_id = $4)
		  AND ($5 = 0 OR outcome = $5)
		  AND ($6::timestamptz IS NULL OR attempt_time >= $6)
		  AND ($7::timestamptz IS NULL OR attempt_time < $7)
		  AND ($8::timestamptz IS NULL OR (attempt_time, attempt_id) < ($8, $9))
		ORDER BY attempt_time DESC, attempt_id DESC
		LIMIT $10`,
		f.AccountID, f.WebhookID, f.EventType, f.EventID, int16(f.Outcome), start, end, cursor, afterID, limit)
	if err != nil {
		return nil, wrap("list attempts", err)
	}
	defer rows.Close()
	var out []domain.Attempt
	for rows.Next() {
		var a domain.Attempt
		var outcome int16
		var retry *time.Time
		if err := rows.Scan(&a.ID, &a.DeliveryID, &a.AccountID, &a.WebhookID, &a.EventID, &a.EventType, &a.URL,
			&a.Attempt, &outcome, &a.Test, &a.RequestHeaders, &a.ResponseStatus, &a.ResponseBody, &a.DurationMS,
			&a.Error, &a.Time, &retry); err != nil {
			return nil, wrap("list attempts", err)
		}
		a.Outcome = domain.Outcome(outcome)
		if retry != nil {
			a.NextRetryTime = *retry
		}
		out = append(out, a)
	}
	return out, wrap("list attempts", rows.Err())
}

const deliveryColumns = `delivery_id, webhook_id, account_id, event_id, event_type, payload, outcome, attempts, last_attempt_at`

func scanDelivery(row pgx.Row) (domain.Delivery, error) {
	var d domain.Delivery
	var outcome int16
	if err := row.Scan(&d.ID, &d.WebhookID, &d.AccountID, &d.EventID, &d.EventType, &d.Payload, &outcome,
		&d.Attempts, &d.LastAttempt); err != nil {
		return domain.Delivery{}, notFound(err)
	}
	d.Outcome = domain.Outcome(outcome)
	return d, nil
}

// GetDelivery returns a delivery of the account.
func (s *Store) GetDelivery(ctx context.Context, accountID, id string) (domain.Delivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE delivery_id = $1 AND account_id = $2`, id, accountID))
	return d, wrap("get delivery", err)
}

// ListFailedDeliveries returns up to limit dead-lettered deliveries of a webhook of the account
// whose last attempt is in [start, end).
func (s *Store) ListFailedDeliveries(ctx context.Context, accountID, webhookID string, start, end time.Time, limit int) ([]domain.Delivery, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE account_id = $1 AND webhook_id = $2 AND outcome = $3 AND last_attempt_at >= $4 AND last_attempt_at < $5
		ORDER BY last_attempt_at LIMIT $6`, accountID, webhookID, int16(domain.OutcomeDeadLettered), start, end, limit)
	if err != nil {
		return nil, wrap("list failed deliveries", err)
	}
	defer rows.Close()
	var out []domain.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, wrap("list failed deliveries", err)
		}
		out = append(out, d)
	}
	return out, wrap("list failed deliveries", rows.Err())
}
