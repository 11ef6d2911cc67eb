package devstack

import (
	"context"
	"encoding/json"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/customertext/webhooks/libs/auth"
	"github.com/customertext/webhooks/libs/event"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
)

// Demo is what the walking-skeleton scenario produced.
type Demo struct {
	AccountID     string
	AdminKey      string
	WebhookID     string
	SigningSecret string
	BearerToken   string
	ContactID     string
	Request       Request
}

// Dial opens a gRPC client connection with per-RPC bearer credentials.
func Dial(addr, token string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.Bearer(token)))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn, nil
}

// RunDemo creates an account with an admin key, registers a new_contact webhook with bearer auth
// pointing at receiverURL, creates a contact and waits for the webhook request to arrive. The
// webhook opts in to trace context, so the demo request shows the event's traceparent.
func RunDemo(ctx context.Context, s *Stack, rcv *Receiver) (Demo, error) {
	var d Demo
	p := s.Ports()
	svc, err := Dial(Addr(p.SubscriptionsGRPC), s.ServiceToken)
	if err != nil {
		return d, err
	}
	defer svc.Close()
	acct, err := webhooksv1.NewAccountServiceClient(svc).CreateAccount(ctx, &webhooksv1.CreateAccountRequest{Name: "Demo Co"})
	if err != nil {
		return d, fmt.Errorf("create account: %w", err)
	}
	d.AccountID = acct.GetAccountId()
	key, err := webhooksv1.NewAccountServiceClient(svc).CreateApiKey(ctx, &webhooksv1.CreateApiKeyRequest{
		AccountId: d.AccountID, UserEmail: "admin@demo.example", Role: webhooksv1.Role_ROLE_ADMIN})
	if err != nil {
		return d, fmt.Errorf("create admin key: %w", err)
	}
	d.AdminKey = key.GetApiKey()

	admin, err := Dial(Addr(p.SubscriptionsGRPC), d.AdminKey)
	if err != nil {
		return d, err
	}
	defer admin.Close()
	d.BearerToken = "demo-receiver-token"
	before, err := s.MinIndexed(ctx)
	if err != nil {
		return d, err
	}
	wh, err := webhooksv1.NewWebhookServiceClient(admin).CreateWebhook(ctx, &webhooksv1.CreateWebhookRequest{
		Url: rcv.URL, EventTypes: []string{event.NewContact}, Description: "demo receiver",
		Auth:             &webhooksv1.Auth{Kind: &webhooksv1.Auth_Bearer{Bearer: &webhooksv1.BearerToken{Token: d.BearerToken}}},
		SendTraceContext: proto.Bool(true),
	})
	if err != nil {
		return d, fmt.Errorf("create webhook: %w", err)
	}
	d.WebhookID, d.SigningSecret = wh.GetWebhook().GetId(), wh.GetSigningSecret()

	contacts, err := Dial(Addr(p.ContactsGRPC), s.ServiceToken)
	if err != nil {
		return d, err
	}
	defer contacts.Close()
	// A config change reaches every dispatcher within a second; events published before that
	// are matched against the old index, so wait for it.
	if err := s.WaitIndexed(ctx, before+1); err != nil {
		return d, err
	}
	c, err := contactsv1.NewContactServiceClient(contacts).CreateContact(ctx, &contactsv1.CreateContactRequest{
		AccountId: d.AccountID,
		Contact:   &contactsv1.Contact{FirstName: "Jane", LastName: "Smith", Phone: "(555) 123-4567", Email: "jane@example.com"},
	})
	if err != nil {
		return d, fmt.Errorf("create contact: %w", err)
	}
	d.ContactID = c.GetContact().GetId()
	req, err := rcv.WaitFor(ctx, func(r Request) bool {
		var env event.Envelope
		if json.Unmarshal(r.Body, &env) != nil {
			return false
		}
		var data struct {
			ContactID string `json:"contact_id"`
		}
		return json.Unmarshal(env.Data, &data) == nil && data.ContactID == d.ContactID
	})
	if err != nil {
		return d, fmt.Errorf("no webhook request for contact %s: %w", d.ContactID, err)
	}
	d.Request = req
	return d, nil
}
