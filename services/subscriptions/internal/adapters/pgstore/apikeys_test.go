package pgstore

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/customertext/webhooks/libs/pgtest"
	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// TestAPIKeysMigrationKeepsExistingKeys applies the migrations before 0003, stores a key the old
// way, then the rest: the key keeps working with its user's role and gets an id and a name.
func TestAPIKeysMigrationKeepsExistingKeys(t *testing.T) {
	ctx := context.Background()
	pool, err := postgres.Open(ctx, pgtest.NewDatabase(t), Schema, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	before := fstest.MapFS{}
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() >= "0003" {
			continue
		}
		b, err := fs.ReadFile(migrations, "migrations/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		before["migrations/"+e.Name()] = &fstest.MapFile{Data: b}
	}
	if err := postgres.Migrate(ctx, pool, Schema, before, "migrations"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO accounts (id, name) VALUES ('acc_1', 'Acme')`,
		`INSERT INTO users (id, account_id, email, role) VALUES ('usr_1', 'acc_1', 'm@acme.test', 'manager')`,
		`INSERT INTO api_keys (key_hash, user_id) VALUES ('\x0102', 'usr_1')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := Migrate(ctx, pool); err != nil {
		t.Fatalf("migrate with existing keys: %v", err)
	}
	s := New(pool, nil)
	p, err := s.PrincipalByKeyHash(ctx, []byte{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if p.AccountID != "acc_1" || p.UserID != "usr_1" || p.Role != domain.RoleManager || !strings.HasPrefix(p.KeyID, "key_") {
		t.Errorf("principal after migration: %+v", p)
	}
	keys, err := s.ListAPIKeys(ctx, "acc_1")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].Name != "m@acme.test" || keys[0].Role != domain.RoleManager || keys[0].ID != p.KeyID {
		t.Errorf("keys after migration: %+v", keys)
	}
	// It is not an admin key: revoking it is allowed even though the account has no admin key.
	if err := s.RevokeAPIKey(ctx, "acc_1", p.KeyID); err != nil {
		t.Errorf("revoke the manager key: %v", err)
	}
	if _, err := s.PrincipalByKeyHash(ctx, []byte{1, 2}); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("revoked key: got %v, want ErrNotFound", err)
	}
}

// TestRevokeKeepsOneAdminKey: of two admin keys revoked at the same time, one revocation wins
// and the account keeps an admin key. A transaction holding both key rows makes the two
// revocations overlap: each has counted the other admin key before either deletes.
func TestRevokeKeepsOneAdminKey(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	if err := s.CreateAccount(ctx, "acc_1", "Acme"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"key_a", "key_b"} {
		if _, err := s.IssueAPIKey(ctx, domain.APIKey{ID: id, AccountID: "acc_1", Name: id, Role: domain.RoleAdmin, Hint: "abcd"}, []byte(id)); err != nil {
			t.Fatal(err)
		}
	}
	hold, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hold.Rollback(ctx) }()
	if _, err := hold.Exec(ctx, `SELECT 1 FROM api_keys WHERE account_id = 'acc_1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for _, id := range []string{"key_a", "key_b"} {
		go func() { errs <- s.RevokeAPIKey(ctx, "acc_1", id) }()
	}
	for waiting := 0; waiting < 2; {
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := hold.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var refused int
	for range 2 {
		if err := <-errs; errors.Is(err, ErrLastAdminKey) {
			refused++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	keys, err := s.ListAPIKeys(ctx, "acc_1")
	if err != nil {
		t.Fatal(err)
	}
	if refused != 1 || len(keys) != 1 || keys[0].Role != domain.RoleAdmin {
		t.Errorf("got %d refused and keys %+v, want exactly one refusal and one admin key left", refused, keys)
	}
}
