package app

import (
	"context"
	"fmt"
	"time"

	eventsv1 "github.com/customertext/webhooks/libs/gen/customertext/events/v1"
	"github.com/customertext/webhooks/services/contacts/internal/domain"
)

// UpdateContact is the input of the UpdateContact use case, not yet validated.
type UpdateContact struct {
	AccountID string
	ID        string
	Contact   domain.ContactInput
	Mask      []string
	Region    string
}

// UpdateContact changes the masked fields and emits contact_updated naming the fields whose value
// changed. An update that changes nothing writes nothing and emits nothing.
func (s *Service) UpdateContact(ctx context.Context, cmd UpdateContact) (domain.Contact, []string, error) {
	accountID, err := domain.NewAccountID(cmd.AccountID)
	if err != nil {
		return domain.Contact{}, nil, err
	}
	id, err := domain.NewID("contact.id", cmd.ID)
	if err != nil {
		return domain.Contact{}, nil, err
	}
	mask, err := domain.NewUpdateMask(cmd.Mask)
	if err != nil {
		return domain.Contact{}, nil, err
	}
	region, err := domain.NewRegion(cmd.Region)
	if err != nil {
		return domain.Contact{}, nil, err
	}
	f, err := validateMasked(cmd.Contact, mask, region)
	if err != nil {
		return domain.Contact{}, nil, err
	}
	var next domain.Contact
	var changed []string
	err = s.store.InTx(ctx, func(tx Tx) error {
		cur, err := tx.GetForUpdate(ctx, accountID, id)
		if err != nil {
			return err
		}
		next, changed = cur.Apply(f, mask)
		if len(changed) == 0 {
			return nil
		}
		next.UpdateTime = s.now().UTC().Truncate(time.Microsecond)
		if next, err = tx.Update(ctx, next); err != nil {
			return err
		}
		return s.emit(ctx, tx, accountID, &eventsv1.ContactUpdated{
			ContactId: next.ID, FirstName: next.FirstName, LastName: next.LastName, Phone: next.Phone,
			Email: next.Email, Groups: nonNil(next.Groups), ChangedFields: changed,
		}, next.UpdateTime)
	})
	if err != nil {
		return domain.Contact{}, nil, fmt.Errorf("update contact: %w", err)
	}
	if len(changed) > 0 {
		s.metrics.updated.Inc()
	}
	return next, changed, nil
}

// validateMasked validates only the fields the mask names, so that fields left out of the mask
// may hold anything (typically their zero value).
func validateMasked(in domain.ContactInput, mask []string, region string) (domain.Fields, error) {
	var f domain.Fields
	var err error
	for _, p := range mask {
		switch p {
		case domain.FieldFirstName:
			f.FirstName, err = domain.NewName(domain.FieldFirstName, in.FirstName)
		case domain.FieldLastName:
			f.LastName, err = domain.NewName(domain.FieldLastName, in.LastName)
		case domain.FieldPhone:
			f.Phone, err = domain.NormalizePhone(in.Phone, region)
		case domain.FieldEmail:
			f.Email, err = domain.NewEmail(in.Email)
		case domain.FieldGroups:
			f.Groups, err = domain.NewGroupNames(domain.FieldGroups, in.Groups)
		}
		if err != nil {
			return domain.Fields{}, domain.WithPrefix("contact.", err)
		}
	}
	return f, nil
}
