package app

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// maxKeyName bounds an API key's name.
const maxKeyName = 100

// IssueAPIKey creates a key of the caller's account with a name and a role and returns it in
// clear text, this once.
func (s *Service) IssueAPIKey(ctx context.Context, p domain.Principal, name string, role domain.Role) (domain.APIKey, string, error) {
	return s.issueAPIKey(ctx, p.AccountID, p.UserID, name, role)
}

// IssueAccountAPIKey is IssueAPIKey for an operator (the CLI): the key belongs to the account
// with no issuing user.
func (s *Service) IssueAccountAPIKey(ctx context.Context, accountID, name string, role domain.Role) (domain.APIKey, string, error) {
	if accountID == "" {
		return domain.APIKey{}, "", &domain.ValidationError{Field: "account_id", Reason: "is required"}
	}
	return s.issueAPIKey(ctx, accountID, "", name, role)
}

func (s *Service) issueAPIKey(ctx context.Context, accountID, userID, name string, role domain.Role) (domain.APIKey, string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return domain.APIKey{}, "", &domain.ValidationError{Field: "name", Reason: "is required"}
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxKeyName:
		return domain.APIKey{}, "", &domain.ValidationError{Field: "name", Reason: "must be valid UTF-8 of at most 100 characters"}
	case !role.Valid():
		return domain.APIKey{}, "", &domain.ValidationError{Field: "role", Reason: "must be admin, manager or user"}
	}
	key, k, err := newAPIKey()
	if err != nil {
		return domain.APIKey{}, "", err
	}
	k.AccountID, k.UserID, k.Name, k.Role = accountID, userID, name, role
	k, err = s.store.IssueAPIKey(ctx, k, HashAPIKey(key))
	if err != nil {
		return domain.APIKey{}, "", err
	}
	s.log.InfoContext(ctx, "api key issued", "account_id", accountID, "key_id", k.ID, "role", string(role))
	return k, key, nil
}

// ListAPIKeys returns the caller's account's keys (never the keys themselves).
func (s *Service) ListAPIKeys(ctx context.Context, p domain.Principal) ([]domain.APIKey, error) {
	return s.store.ListAPIKeys(ctx, p.AccountID)
}

// RevokeAPIKey deletes a key of the caller's account. Keys are looked up in the database on
// every request, so the key fails everywhere from the commit on. The account's last admin key
// cannot be revoked.
func (s *Service) RevokeAPIKey(ctx context.Context, p domain.Principal, id string) error {
	return s.revokeAPIKey(ctx, p.AccountID, id)
}

// RevokeAccountAPIKey is RevokeAPIKey for an operator (the CLI).
func (s *Service) RevokeAccountAPIKey(ctx context.Context, accountID, id string) error {
	if accountID == "" {
		return &domain.ValidationError{Field: "account_id", Reason: "is required"}
	}
	return s.revokeAPIKey(ctx, accountID, id)
}

func (s *Service) revokeAPIKey(ctx context.Context, accountID, id string) error {
	if id == "" {
		return &domain.ValidationError{Field: "id", Reason: "is required"}
	}
	if err := s.store.RevokeAPIKey(ctx, accountID, id); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "api key revoked", "account_id", accountID, "key_id", id)
	return nil
}
