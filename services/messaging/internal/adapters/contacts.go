package adapters

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	"github.com/customertext/webhooks/services/messaging/internal/app"
	"github.com/customertext/webhooks/services/messaging/internal/domain"
)

// Contacts implements app.Contacts with the contacts service's gRPC API. The connection must
// carry the service credential.
type Contacts struct {
	client contactsv1.ContactServiceClient
}

// NewContacts wraps a contacts client.
func NewContacts(client contactsv1.ContactServiceClient) *Contacts {
	return &Contacts{client: client}
}

var _ app.Contacts = (*Contacts)(nil)

// ByPhone implements app.Contacts.
func (c *Contacts) ByPhone(ctx context.Context, accountID, phone string) (app.Contact, error) {
	resp, err := c.client.GetContactByPhone(ctx, &contactsv1.GetContactByPhoneRequest{AccountId: accountID, Phone: phone})
	if err != nil {
		return app.Contact{}, mapErr("get contact by phone", err)
	}
	return fromProto(resp.GetContact()), nil
}

// Create implements app.Contacts.
func (c *Contacts) Create(ctx context.Context, accountID, phone, source, keyword string, groups []string) (app.Contact, error) {
	resp, err := c.client.CreateContact(ctx, &contactsv1.CreateContactRequest{
		AccountId: accountID, Contact: &contactsv1.Contact{Phone: phone, Groups: groups}, Source: source, Keyword: keyword,
	})
	if err != nil {
		return app.Contact{}, mapErr("create contact", err)
	}
	return fromProto(resp.GetContact()), nil
}

// SetOptOut implements app.Contacts.
func (c *Contacts) SetOptOut(ctx context.Context, accountID, contactID string, optedOut bool) (bool, error) {
	resp, err := c.client.SetOptOut(ctx, &contactsv1.SetOptOutRequest{AccountId: accountID, ContactId: contactID, OptedOut: optedOut})
	if err != nil {
		return false, mapErr("set opt-out", err)
	}
	return resp.GetChanged(), nil
}

// AddToGroups implements app.Contacts.
func (c *Contacts) AddToGroups(ctx context.Context, accountID, contactID string, groups []string) (app.Contact, error) {
	resp, err := c.client.AddContactToGroups(ctx, &contactsv1.AddContactToGroupsRequest{AccountId: accountID, ContactId: contactID, Groups: groups})
	if err != nil {
		return app.Contact{}, mapErr("add contact to groups", err)
	}
	return fromProto(resp.GetContact()), nil
}

func fromProto(c *contactsv1.Contact) app.Contact {
	return app.Contact{ID: c.GetId(), Phone: c.GetPhone(), OptedOut: c.GetOptedOut(), Groups: c.GetGroups()}
}

func mapErr(op string, err error) error {
	switch status.Code(err) {
	case codes.NotFound:
		return fmt.Errorf("%s: %w", op, app.ErrNotFound)
	case codes.AlreadyExists:
		return fmt.Errorf("%s: %w", op, app.ErrAlreadyExists)
	case codes.InvalidArgument:
		// The contacts service refused our input (e.g. a number it does not accept): a retry
		// cannot succeed, so it is the caller's bad input.
		return fmt.Errorf("%s: %s: %w", op, status.Convert(err).Message(), domain.ErrInvalid)
	}
	return fmt.Errorf("%s: %w", op, err)
}
