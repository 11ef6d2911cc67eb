package app

import (
	"context"
	"fmt"
	"time"

	"github.com/customertext/webhooks/services/contacts/internal/domain"
)

// CreateGroup adds a group to the account.
func (s *Service) CreateGroup(ctx context.Context, accountID, name string) (domain.Group, error) {
	accountID, err := domain.NewAccountID(accountID)
	if err != nil {
		return domain.Group{}, err
	}
	if name, err = domain.NewGroupName("name", name); err != nil {
		return domain.Group{}, err
	}
	id, err := newID("grp_")
	if err != nil {
		return domain.Group{}, err
	}
	g := domain.Group{ID: id, Name: name}
	if err := s.store.InTx(ctx, func(tx Tx) error { return tx.CreateGroup(ctx, accountID, g) }); err != nil {
		return domain.Group{}, fmt.Errorf("create group: %w", err)
	}
	return g, nil
}

// ListGroups returns the account's groups by name.
func (s *Service) ListGroups(ctx context.Context, accountID string) ([]domain.Group, error) {
	accountID, err := domain.NewAccountID(accountID)
	if err != nil {
		return nil, err
	}
	gs, err := s.store.ListGroups(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return gs, nil
}

// AddContactToGroups adds the contact to the groups, creating the missing ones, and returns the
// contact and the groups it joined. Idempotent; it emits no event (the caller, keyword opt-in,
// emits keyword_opt_in).
func (s *Service) AddContactToGroups(ctx context.Context, accountID, contactID string, groups []string) (domain.Contact, []string, error) {
	accountID, err := domain.NewAccountID(accountID)
	if err != nil {
		return domain.Contact{}, nil, err
	}
	if contactID, err = domain.NewID("contact_id", contactID); err != nil {
		return domain.Contact{}, nil, err
	}
	names, err := domain.NewGroupNames("groups", groups)
	if err != nil {
		return domain.Contact{}, nil, err
	}
	if len(names) == 0 {
		return domain.Contact{}, nil, domain.Invalid("groups", "name at least one group")
	}
	var c domain.Contact
	var added []string
	err = s.store.InTx(ctx, func(tx Tx) error {
		if _, err := tx.GetForUpdate(ctx, accountID, contactID); err != nil {
			return err
		}
		if added, err = tx.AddGroups(ctx, accountID, contactID, names); err != nil {
			return err
		}
		c, err = tx.GetForUpdate(ctx, accountID, contactID)
		return err
	})
	if err != nil {
		return domain.Contact{}, nil, fmt.Errorf("add contact to groups: %w", err)
	}
	return c, added, nil
}

// SetOptOut records an opt-out (or opt-in) and reports whether it changed anything. Idempotent;
// it emits no event (messaging emits contact_opt_out).
func (s *Service) SetOptOut(ctx context.Context, accountID, contactID string, optedOut bool) (domain.Contact, bool, error) {
	accountID, err := domain.NewAccountID(accountID)
	if err != nil {
		return domain.Contact{}, false, err
	}
	if contactID, err = domain.NewID("contact_id", contactID); err != nil {
		return domain.Contact{}, false, err
	}
	var c domain.Contact
	var changed bool
	err = s.store.InTx(ctx, func(tx Tx) error {
		changed = false // the store may retry this function
		var err error
		if c, err = tx.GetForUpdate(ctx, accountID, contactID); err != nil {
			return err
		}
		if c.OptedOut == optedOut {
			return nil
		}
		c.OptedOut = optedOut
		c.UpdateTime = s.now().UTC().Truncate(time.Microsecond)
		changed = true
		c, err = tx.Update(ctx, c)
		return err
	})
	if err != nil {
		return domain.Contact{}, false, fmt.Errorf("set opt-out: %w", err)
	}
	return c, changed, nil
}
