package postgres_test

import (
	"context"
	"sync"
	"testing"
	"testing/fstest"

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
