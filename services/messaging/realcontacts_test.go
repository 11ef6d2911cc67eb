package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/customertext/webhooks/libs/auth"
	"github.com/customertext/webhooks/libs/event"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	messagingv1 "github.com/customertext/webhooks/libs/gen/customertext/messaging/v1"
	"github.com/customertext/webhooks/libs/proctest"
)

// startRealContacts builds the contacts service from ../contacts and runs it as a process on
// the test's database and NATS server; it returns its gRPC address.
func startRealContacts(t *testing.T, natsURL, dbURL string) string {
	t.Helper()
	return proctest.StartService(t, filepath.Join("..", "contacts"), []string{"NATS_URL=" + natsURL, "DATABASE_URL=" + dbURL,
		"GRPC_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0", "SERVICE_TOKEN=" + testToken, "LOG_FORMAT=json"}, waitFor)
}

// TestWithRealContactsService drives messaging against the real contacts service: a keyword
// from an unknown sender creates the contact (contacts emits new_contact with source
// keyword_optin) and joins its groups (keyword_opt_in), then STOP opts it out (contact_opt_out)
// in the contacts service itself.
func TestWithRealContactsService(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the contacts service")
	}
	t.Parallel()
	var contactsAddr string
	s := startStackWith(t, stackOptions{contacts: func(t *testing.T, natsURL, dbURL string) string {
		contactsAddr = startRealContacts(t, natsURL, dbURL)
		return contactsAddr
	}})
	s.registerNumber(acct, acctNumber, carrierTok)
	ctx := context.Background()
	if _, err := s.client.CreateKeyword(ctx, &messagingv1.CreateKeywordRequest{AccountId: acct,
		Keyword: &messagingv1.Keyword{Keyword: "JOIN", Groups: []string{"Events"}, Reply: "Welcome!"}}); err != nil {
		t.Fatalf("create keyword: %v", err)
	}

	if code, _ := s.inbound(carrierTok, smsForm(janePhone, acctNumber, "join", "SM1")); code != 200 {
		t.Fatalf("JOIN: got %d, want 200", code)
	}
	newContact := s.waitEvents(acct, event.NewContact, 1)[0].Data
	optIn := s.waitEvents(acct, event.KeywordOptIn, 1)[0].Data
	if newContact["source"] != "keyword_optin" || newContact["keyword"] != "JOIN" || newContact["phone"] != janePhone {
		t.Errorf("new_contact: got %v, want source keyword_optin, keyword JOIN, phone %s", newContact, janePhone)
	}
	// The product page's example: a contact who joined by keyword arrives with its groups.
	if diff := cmp.Diff([]any{"Events"}, newContact["groups"]); diff != "" {
		t.Errorf("new_contact groups (-want +got):\n%s", diff)
	}
	want := map[string]any{"contact_id": newContact["contact_id"], "phone": janePhone, "keyword": "JOIN",
		"groups": []any{"Events"}, "new_contact": true}
	if diff := cmp.Diff(want, optIn); diff != "" {
		t.Errorf("keyword_opt_in (-want +got):\n%s", diff)
	}

	if code, _ := s.inbound(carrierTok, smsForm(janePhone, acctNumber, "STOP", "SM2")); code != 200 {
		t.Fatalf("STOP: got %d, want 200", code)
	}
	optOut := s.waitEvents(acct, event.ContactOptOut, 1)[0].Data
	if optOut["contact_id"] != newContact["contact_id"] {
		t.Errorf("contact_opt_out contact: got %v, want %v", optOut["contact_id"], newContact["contact_id"])
	}

	conn, err := grpc.NewClient(contactsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.Bearer(testToken)))
	if err != nil {
		t.Fatalf("contacts client: %v", err)
	}
	defer conn.Close()
	got, err := contactsv1.NewContactServiceClient(conn).GetContactByPhone(ctx, &contactsv1.GetContactByPhoneRequest{AccountId: acct, Phone: janePhone})
	if err != nil {
		t.Fatalf("get contact: %v", err)
	}
	if !got.GetContact().GetOptedOut() || !cmp.Equal(got.GetContact().GetGroups(), []string{"Events"}) {
		t.Errorf("contact in the contacts service: got opted_out %v groups %v, want true [Events]",
			got.GetContact().GetOptedOut(), got.GetContact().GetGroups())
	}
	if n := count(s.events(acct), event.NewContact); n != 1 {
		t.Errorf("got %d new_contact events, want 1", n)
	}
}
