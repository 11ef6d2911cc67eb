package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"

	"github.com/customertext/webhooks/libs/pgtest"
	"github.com/customertext/webhooks/libs/postgres"
)

func TestMigrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	pool, err := postgres.Open(ctx, url, "svc", 8)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	fsys := fstest.MapFS{
		"m/0001_things.sql": {Data: []byte(`CREATE TABLE things (id int PRIMARY KEY);`)},
		"m/0002_seed.sql":   {Data: []byte(`INSERT INTO things VALUES (1), (2);`)},
		"m/README.md":       {Data: []byte(`not a migration`)},
	}
	// Replicas starting together: the advisory lock serialises them, each file applies once.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- postgres.Migrate(ctx, pool, "svc", fsys, "m")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM things").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("got %d rows, want 2 (the seed applied exactly once)", n)
	}
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM svc.schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("got %d recorded migrations, want 2", n)
	}

	bad := fstest.MapFS{"m/0003_broken.sql": {Data: []byte(`CREATE TABLE nope (`)}}
	if err := postgres.Migrate(ctx, pool, "svc", bad, "m"); err == nil {
		t.Error("a broken migration: got nil error")
	}
	if err := postgres.Migrate(ctx, pool, `svc"; DROP`, fsys, "m"); err == nil {
		t.Error("an unsafe schema name: got nil error")
	}
}

// In production each service logs in as its own role that owns its schema but may not create
// schemas in the database (CloudNativePG's Database object creates them): migrating must work
// with just that.
func TestMigrateAsTheSchemaOwnerWithoutCreateOnTheDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	adminURL := pgtest.NewDatabase(t)
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	role := "ct_role_" + hex.EncodeToString(b[:])
	for _, q := range []string{
		"CREATE ROLE " + role + " LOGIN",
		"REVOKE CREATE ON DATABASE " + pgx.Identifier{strings.TrimPrefix(mustPath(t, adminURL), "/")}.Sanitize() + " FROM PUBLIC",
		"CREATE SCHEMA svc AUTHORIZATION " + role,
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), adminURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP SCHEMA svc CASCADE")
		_, _ = c.Exec(context.Background(), "DROP ROLE "+role)
	})
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	pool, err := postgres.Open(ctx, u.String(), "svc", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	fsys := fstest.MapFS{"m/0001_things.sql": {Data: []byte(`CREATE TABLE things (id int PRIMARY KEY);`)}}
	if err := postgres.Migrate(ctx, pool, "svc", fsys, "m"); err != nil {
		t.Fatalf("Migrate as the schema's owner: %v", err)
	}
	if _, err := pool.Exec(ctx, "INSERT INTO things VALUES (1)"); err != nil {
		t.Errorf("use the migrated table: %v", err)
	}
}

func mustPath(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path
}
