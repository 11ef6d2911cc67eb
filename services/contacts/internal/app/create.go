package app

import (
	"context"
	"fmt"
	"time"

	eventsv1 "github.com/customertext/webhooks/libs/gen/customertext/events/v1"
	"github.com/customertext/webhooks/services/contacts/internal/domain"
)

// CreateContact is the input of the CreateContact use case, not yet validated.
type CreateContact struct {
	AccountID string
	Contact   domain.ContactInput
	Region    string
	Source    string
	Keyword   string
}

// CreateContact adds a contact and emits new_contact with its source.
func (s *Service) CreateContact(ctx context.Context, cmd CreateContact) (domain.Contact, error) {
	accountID, err := domain.NewAccountID(cmd.AccountID)
	if err != nil {
		return domain.Contact{}, err
	}
	region, err := domain.NewRegion(cmd.Region)
	if err != nil {
		return domain.Contact{}, err
	}
	source, err := domain.ParseSource(cmd.Source)
	if err != nil {
		return domain.Contact{}, err
	}
	keyword := ""
	switch {
	case source == domain.SourceKeywordOptIn:
		if keyword, err = domain.NewKeyword(cmd.Keyword); err != nil {
			return domain.Contact{}, err
		}
	case cmd.Keyword != "":
		return domain.Contact{}, domain.Invalid("keyword", "is only allowed when source is keyword_optin")
	}
	f, err := domain.NewFields(cmd.Contact, region)
	if err != nil {
		return domain.Contact{}, domain.WithPrefix("contact.", err)
	}
	c, err := s.newContact(accountID, f, cmd.Contact.OptedOut)
	if err != nil {
		return domain.Contact{}, err
	}
	err = s.store.InTx(ctx, func(tx Tx) error {
		c, err = s.insert(ctx, tx, c, source, keyword)
		return err
	})
	if err != nil {
		return domain.Contact{}, fmt.Errorf("create contact: %w", err)
	}
	s.metrics.created.WithLabelValues(string(source)).Inc()
	return c, nil
}

func (s *Service) newContact(accountID string, f domain.Fields, optedOut bool) (domain.Contact, error) {
	id, err := newID("ct_")
	if err != nil {
		return domain.Contact{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond) // PostgreSQL's precision
	return domain.Contact{
		ID: id, AccountID: accountID,
		FirstName: f.FirstName, LastName: f.LastName, Phone: f.Phone, Email: f.Email, Groups: f.Groups,
		OptedOut: optedOut, CreateTime: now, UpdateTime: now,
	}, nil
}

// insert stores c and its new_contact event in tx and returns c as stored.
func (s *Service) insert(ctx context.Context, tx Tx, c domain.Contact, source domain.Source, keyword string) (domain.Contact, error) {
	c, err := tx.Insert(ctx, c)
	if err != nil {
		return domain.Contact{}, err
	}
	err = s.emit(ctx, tx, c.AccountID, &eventsv1.NewContact{
		ContactId: c.ID, FirstName: c.FirstName, LastName: c.LastName, Phone: c.Phone, Email: c.Email,
		Groups: nonNil(c.Groups), Source: string(source), Keyword: keyword,
	}, c.CreateTime)
	if err != nil {
		return domain.Contact{}, err
	}
	return c, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
