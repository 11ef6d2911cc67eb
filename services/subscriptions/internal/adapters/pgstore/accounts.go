package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// CreateAccount inserts an account.
func (s *Store) CreateAccount(ctx context.Context, id, name string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO accounts (id, name) VALUES ($1, $2)`, id, name)
	return wrap("create account", err)
}

// CreateAPIKey upserts the user (account, email) with role and stores a new key for them (named
// after the user, following the user's role). It returns the user's id (newUserID when the user
// is new) or domain.ErrNotFound for an unknown account.
func (s *Store) CreateAPIKey(ctx context.Context, accountID, email string, role domain.Role, newUserID string, k domain.APIKey, keyHash []byte) (string, error) {
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
	if _, err := tx.Exec(ctx, `
		INSERT INTO api_keys (key_hash, user_id, id, account_id, name, hint) VALUES ($1, $2, $3, $4, $5, $6)`,
		keyHash, userID, k.ID, accountID, email, k.Hint); err != nil {
		return "", wrap("create api key: key", err)
	}
	return userID, wrap("create api key: commit", tx.Commit(ctx))
}

// IssueAPIKey stores a key of the account with a role of its own, or returns domain.ErrNotFound
// for an unknown account.
func (s *Store) IssueAPIKey(ctx context.Context, k domain.APIKey, keyHash []byte) (domain.APIKey, error) {
	var userID *string
	if k.UserID != "" {
		userID = &k.UserID
	}
	err := s.pool.QueryRow(ctx, `
		INSERT INTO api_keys (key_hash, user_id, id, account_id, name, role, hint) VALUES ($1, $2, $3, $4, $5, $6, $7)
		RETURNING created_at`, keyHash, userID, k.ID, k.AccountID, k.Name, string(k.Role), k.Hint).Scan(&k.CreateTime)
	if isForeignKeyViolation(err) {
		return domain.APIKey{}, fmt.Errorf("issue api key: account %s: %w", k.AccountID, domain.ErrNotFound)
	}
	if err != nil {
		return domain.APIKey{}, wrap("issue api key", err)
	}
	return k, nil
}

// ListAPIKeys returns the account's keys, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context, accountID string) ([]domain.APIKey, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT k.id, k.account_id, coalesce(k.user_id, ''), k.name, coalesce(k.role, u.role), k.hint,
		       k.created_at, k.last_used_at
		FROM api_keys k LEFT JOIN users u ON u.id = k.user_id
		WHERE k.account_id = $1
		ORDER BY k.created_at, k.id`, accountID)
	if err != nil {
		return nil, wrap("list api keys", err)
	}
	defer rows.Close()
	var out []domain.APIKey
	for rows.Next() {
		var k domain.APIKey
		var role string
		var lastUsed *time.Time
		if err := rows.Scan(&k.ID, &k.AccountID, &k.UserID, &k.Name, &role, &k.Hint, &k.CreateTime, &lastUsed); err != nil {
			return nil, wrap("list api keys", err)
		}
		k.Role = domain.Role(role)
		if lastUsed != nil {
			k.LastUsedTime = *lastUsed
		}
		out = append(out, k)
	}
	return out, wrap("list api keys", rows.Err())
}

// ErrLastAdminKey is returned (wrapping domain.ErrPrecondition) when revoking a key would leave
// its account without an admin key.
var ErrLastAdminKey = fmt.Errorf("%w: this is the account's last admin API key; issue another admin key before revoking it", domain.ErrPrecondition)

// RevokeAPIKey deletes a key of the account. The account row is locked so two concurrent
// revocations cannot remove the last two admin keys between them.
func (s *Store) RevokeAPIKey(ctx context.Context, accountID, id string) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return wrap("revoke api key", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE`, accountID); err != nil {
		return wrap("revoke api key: lock account", err)
	}
	var role string
	err = tx.QueryRow(ctx, `
		SELECT coalesce(k.role, u.role) FROM api_keys k LEFT JOIN users u ON u.id = k.user_id
		WHERE k.account_id = $1 AND k.id = $2`, accountID, id).Scan(&role)
	if err != nil {
		return wrap("revoke api key", notFound(err))
	}
	if domain.Role(role) == domain.RoleAdmin {
		var others int
		if err := tx.QueryRow(ctx, `
			SELECT count(*) FROM api_keys k LEFT JOIN users u ON u.id = k.user_id
			WHERE k.account_id = $1 AND k.id <> $2 AND coalesce(k.role, u.role) = 'admin'`, accountID, id).Scan(&others); err != nil {
			return wrap("revoke api key: count admin keys", err)
		}
		if others == 0 {
			return ErrLastAdminKey
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM api_keys WHERE account_id = $1 AND id = $2`, accountID, id); err != nil {
		return wrap("revoke api key", err)
	}
	return wrap("revoke api key: commit", tx.Commit(ctx))
}

// PrincipalByKeyHash returns who holds the API key with this hash, or domain.ErrNotFound. It
// reads the database on every call (no cache), so a revoked key fails at once on every replica.
func (s *Store) PrincipalByKeyHash(ctx context.Context, keyHash []byte) (domain.Principal, error) {
	var p domain.Principal
	var role string
	var lastUsed *time.Time
	err := s.pool.QueryRow(ctx, `
		SELECT k.account_id, coalesce(k.user_id, ''), coalesce(k.role, u.role), k.id, k.last_used_at
		FROM api_keys k LEFT JOIN users u ON u.id = k.user_id
		WHERE k.key_hash = $1`, keyHash).Scan(&p.AccountID, &p.UserID, &role, &p.KeyID, &lastUsed)
	if err != nil {
		return domain.Principal{}, wrap("look up api key", notFound(err))
	}
	p.Role = domain.Role(role)
	if lastUsed != nil {
		p.KeyLastUsed = *lastUsed
	}
	return p, nil
}

// TouchAPIKey records that the key was used now.
func (s *Store) TouchAPIKey(ctx context.Context, id string) error {
	_, err := s.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = now() WHERE id = $1`, id)
	return wrap("touch api key", err)
}
