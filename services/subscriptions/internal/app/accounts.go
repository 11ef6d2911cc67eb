package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// ErrUnauthenticated is returned for a missing or unknown API key.
var ErrUnauthenticated = errors.New("unauthenticated")

// keyUseResolution is how stale a key's last-used time may get.
const keyUseResolution = time.Minute

// apiKeyPrefix marks account API keys, so a leaked one is recognisable by secret scanners.
const apiKeyPrefix = "ctk_"

// HashAPIKey is how API keys are stored.
func HashAPIKey(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// Authenticate maps an API key to its account, user and role.
func (s *Service) Authenticate(ctx context.Context, key string) (domain.Principal, error) {
	if !strings.HasPrefix(key, apiKeyPrefix) {
		return domain.Principal{}, ErrUnauthenticated
	}
	p, err := s.store.PrincipalByKeyHash(ctx, HashAPIKey(key))
	if errors.Is(err, domain.ErrNotFound) {
		return domain.Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return domain.Principal{}, err
	}
	// Recording every use would write on every request: a minute's precision is enough to spot
	// an unused or a leaked key.
	if now := s.now(); p.KeyLastUsed.IsZero() || now.Sub(p.KeyLastUsed) > keyUseResolution {
		if err := s.store.TouchAPIKey(ctx, p.KeyID); err != nil {
			s.log.WarnContext(ctx, "record api key use", "key_id", p.KeyID, "error", err)
		}
	}
	return p, nil
}

// CreateAccount creates an account and returns its id.
func (s *Service) CreateAccount(ctx context.Context, name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", &domain.ValidationError{Field: "name", Reason: "is required"}
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > 200:
		return "", &domain.ValidationError{Field: "name", Reason: "must be valid UTF-8 of at most 200 characters"}
	}
	id, err := newID("acc_")
	if err != nil {
		return "", err
	}
	if err := s.store.CreateAccount(ctx, id, name); err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, "account created", "account_id", id)
	return id, nil
}

// CreateAPIKey creates (or updates the role of) the account's user with email and gives them a
// new API key, returned in clear text this once.
func (s *Service) CreateAPIKey(ctx context.Context, accountID, email string, role domain.Role) (userID, key string, err error) {
	switch {
	case accountID == "":
		return "", "", &domain.ValidationError{Field: "account_id", Reason: "is required"}
	case len(email) > 320:
		return "", "", &domain.ValidationError{Field: "user_email", Reason: "is longer than 320 characters"}
	}
	addr, perr := mail.ParseAddress(email)
	if email == "" || perr != nil || addr.Address != email {
		return "", "", &domain.ValidationError{Field: "user_email", Reason: "must be a plain e-mail address such as admin@example.com"}
	}
	switch role {
	case domain.RoleAdmin, domain.RoleManager, domain.RoleUser:
	default:
		return "", "", &domain.ValidationError{Field: "role", Reason: "must be admin, manager or user"}
	}
	key, k, err := newAPIKey()
	if err != nil {
		return "", "", err
	}
	newUser, err := newID("usr_")
	if err != nil {
		return "", "", err
	}
	userID, err = s.store.CreateAPIKey(ctx, accountID, strings.ToLower(email), role, newUser, k, HashAPIKey(key))
	if err != nil {
		return "", "", err
	}
	s.log.InfoContext(ctx, "api key created", "account_id", accountID, "user_id", userID, "role", string(role))
	return userID, key, nil
}

// newAPIKey returns a fresh key in clear text and its record (id and hint).
func newAPIKey() (string, domain.APIKey, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", domain.APIKey{}, fmt.Errorf("generate api key: %w", err)
	}
	key := apiKeyPrefix + base64.RawURLEncoding.EncodeToString(raw)
	id, err := newID("key_")
	if err != nil {
		return "", domain.APIKey{}, err
	}
	return key, domain.APIKey{ID: id, Hint: domain.Hint(key)}, nil
}
