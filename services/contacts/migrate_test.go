package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/customertext/webhooks/libs/pgtest"
	"github.com/customertext/webhooks/services/contacts/internal/adapters"
)

// The migrate subcommand, which the migrate Job runs, applies every migration and exits; running
// it again changes nothing.
func TestMigrateSubcommand(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	getenv := func(k string) string { return map[string]string{"DATABASE_URL": url}[k] }
	for range 2 {
		var out bytes.Buffer
		if err := run(ctx, []string{"migrate"}, getenv, &out); err != nil {
			t.Fatalf("migrate: %v\n%s", err, out.String())
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{adapters.Schema}.Sanitize()+".schema_migrations").Scan(&n); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	if n == 0 {
		t.Errorf("schema_migrations has %d rows, want every migration recorded", n)
	}
}
