package adapters

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	"github.com/customertext/webhooks/services/campaigns/internal/app"
)

// pageSize is how many contacts one ListContacts call returns.
const pageSize = 500

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

// GroupMembers pages through the members of a group.
func (c *Contacts) GroupMembers(ctx context.Context, accountID, group string) ([]app.Contact, error) {
	var out []app.Contact
	token := ""
	for {
		resp, err := c.client.ListContacts(ctx, &contactsv1.ListContactsRequest{AccountId: accountID, Group: group, PageSize: pageSize, PageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list contacts of group: %w", err)
		}
		for _, x := range resp.GetContacts() {
			out = append(out, app.Contact{ID: x.GetId(), Phone: x.GetPhone(), OptedOut: x.GetOptedOut()})
		}
		token = resp.GetNextPageToken()
		if token == "" {
			return out, nil
		}
	}
}

// Get implements app.Contacts.
func (c *Contacts) Get(ctx context.Context, accountID, id string) (app.Contact, error) {
	resp, err := c.client.GetContact(ctx, &contactsv1.GetContactRequest{AccountId: accountID, Id: id})
	if status.Code(err) == codes.NotFound {
		return app.Contact{}, fmt.Errorf("get contact %s: %w", id, app.ErrNotFound)
	}
	if err != nil {
		return app.Contact{}, fmt.Errorf("get contact: %w", err)
	}
	x := resp.GetContact()
	return app.Contact{ID: x.GetId(), Phone: x.GetPhone(), OptedOut: x.GetOptedOut()}, nil
}
