package app

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/customertext/webhooks/services/contacts/internal/domain"
)

// Page sizes of ListContacts.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// GetContact returns one contact of the account.
func (s *Service) GetContact(ctx context.Context, accountID, id string) (domain.Contact, error) {
	accountID, err := domain.NewAccountID(accountID)
	if err != nil {
		return domain.Contact{}, err
	}
	if id, err = domain.NewID("id", id); err != nil {
		return domain.Contact{}, err
	}
	c, err := s.store.Get(ctx, accountID, id)
	if err != nil {
		return domain.Contact{}, fmt.Errorf("get contact: %w", err)
	}
	return c, nil
}

// GetContactByPhone finds the account's contact with the phone, given in any format parseable
// for region.
func (s *Service) GetContactByPhone(ctx context.Context, accountID, phone, region string) (domain.Contact, error) {
	accountID, err := domain.NewAccountID(accountID)
	if err != nil {
		return domain.Contact{}, err
	}
	if region, err = domain.NewRegion(region); err != nil {
		return domain.Contact{}, err
	}
	if phone, err = domain.NormalizePhone(phone, region); err != nil {
		return domain.Contact{}, err
	}
	c, err := s.store.GetByPhone(ctx, accountID, phone)
	if err != nil {
		return domain.Contact{}, fmt.Errorf("get contact by phone: %w", err)
	}
	return c, nil
}

// ListContacts is the input of the ListContacts use case.
type ListContacts struct {
	AccountID string
	PageSize  int
	PageToken string
	Group     string
}

// ListContacts returns a page of the account's contacts in creation order and the token of the
// next page ("" on the last page).
func (s *Service) ListContacts(ctx context.Context, q ListContacts) ([]domain.Contact, string, error) {
	accountID, err := domain.NewAccountID(q.AccountID)
	if err != nil {
		return nil, "", err
	}
	size := q.PageSize
	switch {
	case size < 0:
		return nil, "", domain.Invalid("page_size", "must not be negative")
	case size == 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	after := ""
	if q.PageToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(q.PageToken)
		if err != nil {
			return nil, "", domain.Invalid("page_token", "is not a token from a previous response")
		}
		if after, err = domain.NewID("page_token", string(b)); err != nil {
			return nil, "", domain.Invalid("page_token", "is not a token from a previous response")
		}
	}
	group := ""
	if q.Group != "" {
		if group, err = domain.NewGroupName("group", q.Group); err != nil {
			return nil, "", err
		}
	}
	cs, err := s.store.List(ctx, accountID, group, after, size+1)
	if err != nil {
		return nil, "", fmt.Errorf("list contacts: %w", err)
	}
	next := ""
	if len(cs) > size {
		cs = cs[:size]
		next = base64.RawURLEncoding.EncodeToString([]byte(cs[size-1].ID))
	}
	return cs, next, nil
}

// DeleteContact removes a contact.
func (s *Service) DeleteContact(ctx context.Context, accountID, id string) error {
	accountID, err := domain.NewAccountID(accountID)
	if err != nil {
		return err
	}
	if id, err = domain.NewID("id", id); err != nil {
		return err
	}
	err = s.store.InTx(ctx, func(tx Tx) error { return tx.Delete(ctx, accountID, id) })
	if err != nil {
		return fmt.Errorf("delete contact: %w", err)
	}
	return nil
}
