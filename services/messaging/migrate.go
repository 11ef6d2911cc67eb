package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/services/messaging/internal/adapters"
)

// runMigrate is the "migrate" subcommand: it applies the schema migrations and exits. The migrate
// Job runs it before a rollout, so that no pod migrates at start-up (MIGRATE_ON_START=false).
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet(serviceName+" migrate", flag.ContinueOnError)
	fs.SetOutput(stdout)
	dbURL := fs.String("database-url", "", "PostgreSQL URL (env DATABASE_URL, default "+postgres.DefaultURL+")")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("migrate: unexpected arguments %q", fs.Args())
	}
	url := *dbURL
	if url == "" {
		url = getenv("DATABASE_URL")
	}
	if url == "" {
		url = postgres.DefaultURL
	}
	pool, err := postgres.Open(ctx, url, adapters.Schema, 2)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer pool.Close()
	if err := adapters.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "schema %s migrated\n", adapters.Schema)
	return err
}
