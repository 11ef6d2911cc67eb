package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/customertext/webhooks/libs/auth"
	"github.com/customertext/webhooks/libs/event"
	campaignsv1 "github.com/customertext/webhooks/libs/gen/customertext/campaigns/v1"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	"github.com/customertext/webhooks/libs/proctest"
)

func startRealContacts(t *testing.T, natsURL, dbURL string) string {
	t.Helper()
	return proctest.StartService(t, filepath.Join("..", "contacts"), []string{"NATS_URL=" + natsURL, "DATABASE_URL=" + dbURL,
		"GRPC_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0", "SERVICE_TOKEN=" + testToken, "LOG_FORMAT=json"}, waitFor)
}

// TestCampaignWithRealContactsService sends a campaign to an audience held by the real contacts
// service: group membership, opt-out and paging come from it.
func TestCampaignWithRealContactsService(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the contacts service")
	}
	t.Parallel()
	var contactsAddr string
	d := newDepsWith(t, func(t *testing.T, natsURL, dbURL string) string {
		contactsAddr = startRealContacts(t, natsURL, dbURL)
		return contactsAddr
	})
	conn, err := grpc.NewClient(contactsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.Bearer(testToken)))
	if err != nil {
		t.Fatalf("contacts client: %v", err)
	}
	defer conn.Close()
	contacts := contactsv1.NewContactServiceClient(conn)
	ctx := context.Background()
	for _, c := range []struct {
		phone    string
		groups   []string
		optedOut bool
	}{
		{"+15551230001", []string{"customers"}, false},
		{"+15551230002", []string{"customers"}, true},
		{"+15551230003", []string{"customers", "vip"}, false},
		{"+15551230004", []string{"staff"}, false},
	} {
		resp, err := contacts.CreateContact(ctx, &contactsv1.CreateContactRequest{AccountId: acct,
			Contact: &contactsv1.Contact{Phone: c.phone, Groups: c.groups}})
		if err != nil {
			t.Fatalf("create contact: %v", err)
		}
		if c.optedOut {
			if _, err := contacts.SetOptOut(ctx, &contactsv1.SetOptOutRequest{AccountId: acct, ContactId: resp.GetContact().GetId(), OptedOut: true}); err != nil {
				t.Fatalf("opt out: %v", err)
			}
		}
	}

	p := d.start(nil)
	created, err := p.client.CreateCampaign(ctx, &campaignsv1.CreateCampaignRequest{AccountId: acct, Name: "Real",
		Body: "hello", TargetGroups: []string{"customers", "vip"}})
	if err != nil {
		t.Fatalf("create campaign: %v", err)
	}
	if _, err := p.client.SendCampaign(ctx, &campaignsv1.SendCampaignRequest{AccountId: acct, Id: created.GetCampaign().GetId()}); err != nil {
		t.Fatalf("send: %v", err)
	}
	got := d.waitEvents(acct, event.CampaignSent, 1)[0].Data
	for k, want := range map[string]float64{"audience": 3, "sent": 2, "failed": 0, "skipped_opted_out": 1} {
		if got[k] != want {
			t.Errorf("campaign_sent %s: got %v, want %v", k, got[k], want)
		}
	}
	if want := []string{"+15551230001", "+15551230003"}; strings.Join(sorted(d.sandbox(acct)), ",") != strings.Join(want, ",") {
		t.Errorf("got messages to %v, want %v", d.sandbox(acct), want)
	}
}
