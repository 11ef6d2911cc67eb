// Package postgres opens pgx connection pools and runs a service's SQL migrations from code.
//
// Every service owns one schema in the shared database (subscriptions, contacts, messaging,
// campaigns). Migrations are plain SQL files named NNNN_description.sql, embedded in the service
// binary, applied in order inside one transaction each, and recorded in <schema>.schema_migrations.
// A transaction-scoped advisory lock serialises replicas that start at the same time.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultURL is used when DATABASE_URL is empty: the machine's PostgreSQL on loopback.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Open connects a pool and pings the server. schema, when not empty, becomes the search_path of
// every connection so that queries name their tables unqualified.
func Open(ctx context.Context, url, schema string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	if schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = schema
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	return pool, nil
}

// Migrate creates schema if needed and applies the *.sql files of dir in fsys that are not yet
// recorded, in lexical order.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, fsys fs.FS, dir string) error {
	if schema == "" || strings.ContainsAny(schema, `"; `) {
		return fmt.Errorf("migrate: invalid schema name %q", schema)
	}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return fmt.Errorf("migrate %s: read migrations: %w", schema, err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".sql") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, name := range names {
		body, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return fmt.Errorf("migrate %s: read %s: %w", schema, name, err)
		}
		if err := apply(ctx, pool, schema, name, string(body)); err != nil {
			return fmt.Errorf("migrate %s: %s: %w", schema, name, err)
		}
	}
	return nil
}

func apply(ctx context.Context, pool *pgxpool.Pool, schema, name, body string) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(schema)); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		ident := pgx.Identifier{schema}.Sanitize()
		// CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists;
		// in production the schema is made for the service's role, which has no such right.
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
			return fmt.Errorf("look up schema: %w", err)
		}
		if !exists {
			if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+ident); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+ident+`.schema_migrations (
			name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var done bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+ident+".schema_migrations WHERE name = $1)", name).Scan(&done); err != nil {
			return fmt.Errorf("check applied: %w", err)
		}
		if done {
			return nil
		}
		if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+ident); err != nil {
			return fmt.Errorf("set search_path: %w", err)
		}
		if _, err := tx.Exec(ctx, body); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+ident+".schema_migrations (name) VALUES ($1)", name); err != nil {
			return fmt.Errorf("record: %w", err)
		}
		return nil
	})
}

func lockKey(schema string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("migrate:" + schema))
	return int64(h.Sum64())
}

// IsUniqueViolation reports whether err is a unique constraint violation.
func IsUniqueViolation(err error) bool {
	var pgErr interface{ SQLState() string }
	return errors.As(err, &pgErr) && pgErr.SQLState() == "23505"
}
