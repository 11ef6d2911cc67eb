package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/customertext/webhooks/e2e/devstack"
	"github.com/customertext/webhooks/libs/event"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
)

// TestRedeliveredChainsAllKeepRetrying is the invariant that no delivery stays RETRYING without
// a pending schedule: a delivery still retrying is redelivered twice inside the duplicate window,
// and every one of the three chains runs its whole (shortened) schedule and ends dead-lettered.
// Before generations, the redeliveries' retries reused "<delivery_id>.2" and their schedule
// subject, JetStream acked them as duplicates (or one replaced another's schedule) and fewer
// attempts were made while the log said RETRYING.
func TestRedeliveredChainsAllKeepRetrying(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stack := startStack(ctx, t, devstack.Config{ExtraEnv: []string{"RETRY_SCHEDULE=0s,2s,2s", "CIRCUIT_FAILURES=100"}})
	rcv, err := devstack.StartReceiver("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	rcv.SetStatus(http.StatusInternalServerError)

	p := stack.Ports()
	svc, err := devstack.Dial(devstack.Addr(p.SubscriptionsGRPC), stack.ServiceToken)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	acct, err := webhooksv1.NewAccountServiceClient(svc).CreateAccount(ctx, &webhooksv1.CreateAccountRequest{Name: "Retry Co"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := webhooksv1.NewAccountServiceClient(svc).CreateApiKey(ctx, &webhooksv1.CreateApiKeyRequest{
		AccountId: acct.GetAccountId(), UserEmail: "a@retry.example", Role: webhooksv1.Role_ROLE_ADMIN})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := devstack.Dial(devstack.Addr(p.SubscriptionsGRPC), key.GetApiKey())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	hooks := webhooksv1.NewWebhookServiceClient(admin)
	wh, err := hooks.CreateWebhook(ctx, &webhooksv1.CreateWebhookRequest{Url: rcv.URL, EventTypes: []string{event.NewContact}})
	if err != nil {
		t.Fatal(err)
	}
	webhookID := wh.GetWebhook().GetId()
	if err := stack.WaitIndexed(ctx, 1); err != nil {
		t.Fatal(err)
	}
	contacts, err := devstack.Dial(devstack.Addr(p.ContactsGRPC), stack.ServiceToken)
	if err != nil {
		t.Fatal(err)
	}
	defer contacts.Close()
	if _, err := contactsv1.NewContactServiceClient(contacts).CreateContact(ctx, &contactsv1.CreateContactRequest{
		AccountId: acct.GetAccountId(), Contact: &contactsv1.Contact{FirstName: "Rae", Phone: "+15551238888"}}); err != nil {
		t.Fatal(err)
	}

	list := func() []*webhooksv1.DeliveryAttempt {
		resp, err := hooks.ListDeliveryAttempts(ctx, &webhooksv1.ListDeliveryAttemptsRequest{WebhookId: webhookID, PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetAttempts()
	}
	var deliveryID string
	waitFor(ctx, t, "the first attempt in the log, retrying", func() bool {
		for _, a := range list() {
			if a.GetOutcome() == webhooksv1.Outcome_OUTCOME_RETRYING {
				deliveryID = a.GetDeliveryId()
				return true
			}
		}
		return false
	})
	// Two redeliveries while the first chain still waits for its retries.
	for range 2 {
		if _, err := hooks.RedeliverDelivery(ctx, &webhooksv1.RedeliverDeliveryRequest{DeliveryId: deliveryID}); err != nil {
			t.Fatal(err)
		}
	}
	const chains, perChain = 3, 3
	summary := func() string {
		var b strings.Builder
		for _, a := range list() {
			fmt.Fprintf(&b, "\n  attempt %d %s at %s next %s", a.GetAttempt(), a.GetOutcome(),
				a.GetAttemptTime().AsTime().Format(time.StampMilli), a.GetNextRetryTime().AsTime().Format(time.StampMilli))
		}
		return b.String()
	}
	deadline := time.Now().Add(time.Minute)
	for {
		dead := 0
		for _, a := range list() {
			if a.GetOutcome() == webhooksv1.Outcome_OUTCOME_DEAD_LETTERED {
				dead++
			}
		}
		if dead == chains {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d dead letters after a minute, want %d (one per chain); receiver got %d requests; log:%s",
				dead, chains, len(rcv.Requests()), summary())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := len(rcv.Requests()); got != chains*perChain {
		t.Errorf("receiver got %d requests, want %d (%d chains of %d attempts, none lost)", got, chains*perChain, chains, perChain)
	}
	if got := len(list()); got != chains*perChain {
		t.Errorf("log has %d attempts, want %d; log:%s", got, chains*perChain, summary())
	}
}
