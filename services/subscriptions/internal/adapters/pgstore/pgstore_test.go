package pgstore

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/customertext/webhooks/libs/pgtest"
	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/libs/secrets"
	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

func newStore(t *testing.T) (*Store, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, pgtest.NewDatabase(t), Schema, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	kr, err := secrets.ParseKeys("k1:" + base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return New(pool, kr), pool
}

func partitions(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
		WHERE p.relname = 'delivery_attempts' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func attempt(id string, at time.Time) domain.Attempt {
	return domain.Attempt{ID: id, DeliveryID: "del_" + id, EventID: "evt_1", EventType: "new_contact", AccountID: "acc_1",
		WebhookID: "wh_1", URL: "https://e.com", Attempt: 1, Outcome: domain.OutcomeDeadLettered, Time: at, Payload: []byte(`{}`)}
}

func TestPartitionsAndRetention(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	if err := s.EnsurePartitions(ctx, now.AddDate(0, 0, -1), now.AddDate(0, 0, 1)); err != nil {
		t.Fatal(err)
	}
	want := []string{"delivery_attempts_p20261125", "delivery_attempts_p20261126", "delivery_attempts_p20261127"}
	if got := partitions(t, pool); !slices.Equal(got, want) {
		t.Fatalf("partitions: got %v, want %v", got, want)
	}
	// The writer creates a partition for an attempt on a day that has none, and ignores a
	// redelivered record.
	old := attempt("a_old", now.AddDate(0, 0, -40))
	batch := []domain.Attempt{old, attempt("a_new", now), attempt("a_new", now)}
	if _, err := s.WriteAttempts(ctx, batch, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteAttempts(ctx, batch[:1], 0); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM delivery_attempts").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("attempt rows: got %d, want 2 (duplicates ignored)", n)
	}
	d, err := s.GetDelivery(ctx, "acc_1", "del_a_new")
	if err != nil {
		t.Fatal(err)
	}
	if d.Attempts != 1 {
		t.Errorf("delivery attempts: got %d, want 1 (a redelivered record is not counted twice)", d.Attempts)
	}
	dropped, err := s.DropPartitionsBefore(ctx, now.Add(-30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"delivery_attempts_p20261017"}; !slices.Equal(dropped, want) {
		t.Errorf("dropped: got %v, want %v", dropped, want)
	}
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM delivery_attempts").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("attempt rows after retention: got %d, want 1", n)
	}
	if _, err := s.GetDelivery(ctx, "acc_1", "del_a_old"); err == nil {
		t.Errorf("expired delivery still present")
	}
	if _, err := s.GetDelivery(ctx, "acc_1", "del_a_new"); err != nil {
		t.Errorf("recent delivery: %v", err)
	}
}

func TestWrongKeyCannotDecrypt(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	if err := s.CreateAccount(ctx, "acc_1", "Acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateWebhook(ctx, domain.Webhook{ID: "wh_1", AccountID: "acc_1", URL: "https://e.com", EventTypes: []string{"new_contact"},
		Auth: domain.Auth{Kind: domain.AuthBearer, Value: "tok-123456789"}, Secret: "whsec_secret"}, 0); err != nil {
		t.Fatal(err)
	}
	other, err := secrets.ParseKeys("k2:" + base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	// A keyring lacking the key reads the row marked unreadable, without secrets, and refuses
	// to write it back (which would destroy them).
	got, err := New(pool, other).GetWebhook(ctx, "", "wh_1")
	if err != nil {
		t.Fatalf("GetWebhook with a keyring lacking the key: %v", err)
	}
	if got.Unreadable == "" || got.Secret != "" || got.Auth.Value != "" {
		t.Errorf("with the wrong key: got unreadable=%q secret=%q auth=%q, want marked unreadable and no secrets", got.Unreadable, got.Secret, got.Auth.Value)
	}
	list, err := New(pool, other).ListWebhooks(ctx, WebhookFilter{Limit: 10})
	if err != nil || len(list) != 1 || list[0].Unreadable == "" {
		t.Errorf("list with the wrong key: got %d webhooks, %v; want the row marked unreadable", len(list), err)
	}
	_, err = New(pool, other).UpdateWebhook(ctx, "", "wh_1", func(w *domain.Webhook) error { w.Description = "x"; return nil })
	if !errors.Is(err, domain.ErrSecretsUnreadable) {
		t.Errorf("update with the wrong key: got %v, want ErrSecretsUnreadable", err)
	}
	w, err := s.GetWebhook(ctx, "acc_1", "wh_1")
	if err != nil {
		t.Fatal(err)
	}
	if w.Auth.Value != "tok-123456789" || w.Secret != "whsec_secret" {
		t.Errorf("decrypted: got %q %q", w.Auth.Value, w.Secret)
	}
}
