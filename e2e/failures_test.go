package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/customertext/webhooks/e2e/devstack"
	"github.com/customertext/webhooks/libs/delivery"
	"github.com/customertext/webhooks/libs/event"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
)

// TestDeadLetterRedeliveryAndGone follows failures through every real service: a failing endpoint
// exhausts its (shortened) retry schedule, the attempts land in the delivery log with secrets
// redacted, a redelivery from the API succeeds with the same webhook-id, and a 410 Gone disables
// the webhook with a reason.
func TestDeadLetterRedeliveryAndGone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stack := startStack(ctx, t, devstack.Config{ExtraEnv: []string{"RETRY_SCHEDULE=0s,200ms,200ms"}})
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
	acct, err := webhooksv1.NewAccountServiceClient(svc).CreateAccount(ctx, &webhooksv1.CreateAccountRequest{Name: "Failing Co"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := webhooksv1.NewAccountServiceClient(svc).CreateApiKey(ctx, &webhooksv1.CreateApiKeyRequest{
		AccountId: acct.GetAccountId(), UserEmail: "a@failing.example", Role: webhooksv1.Role_ROLE_ADMIN})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := devstack.Dial(devstack.Addr(p.SubscriptionsGRPC), key.GetApiKey())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	hooks := webhooksv1.NewWebhookServiceClient(admin)
	const token = "super-secret-bearer"
	wh, err := hooks.CreateWebhook(ctx, &webhooksv1.CreateWebhookRequest{Url: rcv.URL, EventTypes: []string{event.NewContact},
		Auth: &webhooksv1.Auth{Kind: &webhooksv1.Auth_Bearer{Bearer: &webhooksv1.BearerToken{Token: token}}}})
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
		AccountId: acct.GetAccountId(), Contact: &contactsv1.Contact{FirstName: "Dee", Phone: "+15551239999"}}); err != nil {
		t.Fatal(err)
	}

	// Three attempts, then a dead letter in the delivery log.
	var attempts []*webhooksv1.DeliveryAttempt
	waitFor(ctx, t, "a dead-lettered delivery in the log", func() bool {
		resp, err := hooks.ListDeliveryAttempts(ctx, &webhooksv1.ListDeliveryAttemptsRequest{WebhookId: webhookID})
		if err != nil {
			t.Fatal(err)
		}
		attempts = resp.GetAttempts()
		for _, a := range attempts {
			if a.GetOutcome() == webhooksv1.Outcome_OUTCOME_DEAD_LETTERED {
				return true
			}
		}
		return false
	})
	if len(attempts) != 3 {
		t.Errorf("got %d attempts in the log, want 3 (the shortened schedule)", len(attempts))
	}
	failed := rcv.Requests()
	if len(failed) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(failed))
	}
	for _, a := range attempts {
		if a.GetResponseStatus() != http.StatusInternalServerError {
			t.Errorf("attempt %d: got status %d, want 500", a.GetAttempt(), a.GetResponseStatus())
		}
		if got := a.GetRequestHeaders()["authorization"]; got != delivery.Redacted {
			t.Errorf("attempt %d: authorization header in the log: got %q, want it redacted", a.GetAttempt(), got)
		}
		for k, v := range a.GetRequestHeaders() {
			if strings.Contains(v, token) {
				t.Errorf("attempt %d: header %s leaks the bearer token", a.GetAttempt(), k)
			}
		}
	}

	// The endpoint recovers; a redelivery from the API arrives with the same webhook-id.
	rcv.SetStatus(http.StatusOK)
	if _, err := hooks.RedeliverDelivery(ctx, &webhooksv1.RedeliverDeliveryRequest{DeliveryId: attempts[0].GetDeliveryId()}); err != nil {
		t.Fatal(err)
	}
	ok, err := rcv.WaitFor(ctx, func(r devstack.Request) bool { return r.Status == http.StatusOK })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ok.Header.Get("Webhook-Id"), failed[0].Header.Get("Webhook-Id"); got != want || got == "" {
		t.Errorf("redelivered webhook-id: got %q, want %q", got, want)
	}
	if string(ok.Body) != string(failed[0].Body) {
		t.Errorf("redelivered body differs:\n got %s\nwant %s", ok.Body, failed[0].Body)
	}

	// 410 Gone: the webhook is disabled with a reason, and nothing more is sent.
	rcv.SetStatus(http.StatusGone)
	if _, err := contactsv1.NewContactServiceClient(contacts).CreateContact(ctx, &contactsv1.CreateContactRequest{
		AccountId: acct.GetAccountId(), Contact: &contactsv1.Contact{FirstName: "Eve", Phone: "+15551239998"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the webhook disabled after 410 Gone", func() bool {
		got, err := hooks.GetWebhook(ctx, &webhooksv1.GetWebhookRequest{Id: webhookID})
		if err != nil {
			t.Fatal(err)
		}
		return !got.GetWebhook().GetEnabled() && strings.Contains(got.GetWebhook().GetDisabledReason(), "410")
	})
	gone := 0
	for _, r := range rcv.Requests() {
		if r.Status == http.StatusGone {
			gone++
		}
	}
	if gone != 1 {
		t.Errorf("got %d requests answered 410, want exactly 1 (no retries after Gone)", gone)
	}
}

func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
