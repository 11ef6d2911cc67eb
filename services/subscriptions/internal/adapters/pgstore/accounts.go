package pgstore

import (
	"context"
	"fmt"

	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// CreateAccount inserts an account.
func (s *Store) CreateAccount(ctx context.Context, id, name string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO accounts (id, name) VALUES ($1, $2)`, id, name)
	return wrap("create account", err)
}

// CreateAPIKey upserts the user (account, email) with role and stores a new key hash for them. It
// returns the user's id (newUserID when the user is new) or domain.ErrNotFound for an unknown
// account.
func (s *Store) CreateAPIKey(ctx context.Context, accountID, email string, role domain.Role, newUserID string, keyHash []byte) (string, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return "", wrap("create api key", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var userID string
	err = tx.QueryRow(ctx, `
		INSERT INTO users (id, account_id, email, role) VALUES ($1, $2, $3, $4)
		ON CONFLICT (account_id, email) DO UPDATE SET role = excluded.role
		RETURNING id`, newUserID, accountID, email, string(role)).Scan(&userID)
	if isForeignKeyViolation(err) {
		return "", fmt.Errorf("create api key: account %s: %w", accountID, domain.ErrNotFound)
	}
	if err != nil {
		return "", wrap("create api key: user", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO api_keys (key_hash, user_id) VALUES ($1, $2)`, keyHash, userID); err != nil {
		return "", wrap("create api key: key", err)
	}
	return userID, wrap("create api key: commit", tx.Commit(ctx))
}

// PrincipalByKeyHash returns who holds the API key with this hash, or domain.ErrNotFound.
func (s *Store) PrincipalByKeyHash(ctx context.Context, keyHash []byte) (domain.Principal, error) {
	var p domain.Principal
	var role string
	err := s.pool.QueryRow(ctx, `
		SELECT u.account_id, u.id, u.role FROM api_keys k JOIN users u ON u.id = k.user_id
		WHERE k.key_hash = $1`, keyHash).Scan(&p.AccountID, &p.UserID, &role)
	if err != nil {
		return domain.Principal{}, wrap("look up api key", notFound(err))
	}
	p.Role = domain.Role(role)
	return p, nil
}
