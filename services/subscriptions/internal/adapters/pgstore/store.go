// Package pgstore keeps the subscription service's state in PostgreSQL (schema "subscriptions"):
// accounts, users and hashed API keys; webhooks with their secrets encrypted by a
// secrets.Keyring; deliveries and the day-partitioned delivery attempt log.
package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/libs/secrets"
	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// Schema is the service's PostgreSQL schema.
const Schema = "subscriptions"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies the embedded migrations.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return postgres.Migrate(ctx, pool, Schema, migrations, "migrations")
}

// Store is the PostgreSQL repository. Secrets are sealed before they are written and opened after
// they are read; clear text never reaches the database.
type Store struct {
	pool *pgxpool.Pool
	keys *secrets.Keyring
}

// New returns a Store over a pool whose search_path is Schema.
func New(pool *pgxpool.Pool, keys *secrets.Keyring) *Store {
	return &Store{pool: pool, keys: keys}
}

// Ping checks the database is reachable.
func (s *Store) Ping(ctx context.Context) error {
	return s.pool.Ping(ctx)
}

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.ErrNotFound
	}
	return err
}

func isForeignKeyViolation(err error) bool {
	var pgErr interface{ SQLState() string }
	return errors.As(err, &pgErr) && pgErr.SQLState() == "23503"
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}
