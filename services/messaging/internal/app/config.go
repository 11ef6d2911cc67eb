package app

import (
	"context"
	"fmt"

	"github.com/customertext/webhooks/libs/sms"
	"github.com/customertext/webhooks/services/messaging/internal/domain"
)

// MaxTokenChars bounds a carrier auth token.
const MaxTokenChars = 256

func requireAccount(accountID string) error {
	return domain.ValidateAccountID(accountID)
}

// RegisterNumber registers (or re-keys) an account's number. A number registered to another
// account is refused with ErrAlreadyExists.
func (s *Service) RegisterNumber(ctx context.Context, accountID, phone, token string) error {
	if err := requireAccount(accountID); err != nil {
		return err
	}
	e164, err := domain.NormalizePhone("phone_number", phone, s.region)
	if err != nil {
		return err
	}
	if token == "" {
		return fmt.Errorf("carrier_auth_token: required: %w", domain.ErrInvalid)
	}
	if len(token) > MaxTokenChars {
		return fmt.Errorf("carrier_auth_token: longer than %d characters: %w", MaxTokenChars, domain.ErrInvalid)
	}
	if err := s.store.RegisterNumber(ctx, Number{AccountID: accountID, Phone: e164, CarrierToken: token}); err != nil {
		return fmt.Errorf("register number: %w", err)
	}
	return nil
}

// CreateKeyword adds an account keyword; ErrAlreadyExists when the word is taken.
func (s *Service) CreateKeyword(ctx context.Context, accountID, word string, groups []string, reply string) (domain.Keyword, error) {
	if err := requireAccount(accountID); err != nil {
		return domain.Keyword{}, err
	}
	k, err := domain.NewKeyword(word, groups, reply)
	if err != nil {
		return domain.Keyword{}, err
	}
	if err := s.store.CreateKeyword(ctx, accountID, k); err != nil {
		return domain.Keyword{}, fmt.Errorf("create keyword: %w", err)
	}
	return k, nil
}

// ListKeywords returns the account's keywords ordered by word.
func (s *Service) ListKeywords(ctx context.Context, accountID string) ([]domain.Keyword, error) {
	if err := requireAccount(accountID); err != nil {
		return nil, err
	}
	ks, err := s.store.Keywords(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("list keywords: %w", err)
	}
	return ks, nil
}

// ListSentMessages returns what the sandbox provider recorded for the account, optionally only
// to one number.
func (s *Service) ListSentMessages(ctx context.Context, accountID, to string) ([]sms.Sent, error) {
	if err := requireAccount(accountID); err != nil {
		return nil, err
	}
	if to != "" {
		var err error
		if to, err = domain.NormalizePhone("to", to, s.region); err != nil {
			return nil, err
		}
	}
	out, err := s.sent.List(ctx, accountID, to)
	if err != nil {
		return nil, fmt.Errorf("list sent messages: %w", err)
	}
	return out, nil
}
