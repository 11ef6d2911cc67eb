package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the carriers' (Twilio's) signature scheme is HMAC-SHA1.
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/customertext/webhooks/e2e/devstack"
	"github.com/customertext/webhooks/libs/event"
	campaignsv1 "github.com/customertext/webhooks/libs/gen/customertext/campaigns/v1"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	messagingv1 "github.com/customertext/webhooks/libs/gen/customertext/messaging/v1"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/signing"
)

// TestEveryEventTypeReachesAWebhook drives each of the six events from its domain action in the
// real service (contacts gRPC, the carrier's inbound SMS HTTP call, a campaign send) to a webhook
// subscribed to all six on a loopback receiver, and checks each body and signature.
func TestEveryEventTypeReachesAWebhook(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	stack := startStack(ctx, t, devstack.Config{})
	rcv, err := devstack.StartReceiver("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	p := stack.Ports()
	dial := func(port int, token string) *devstackConn {
		t.Helper()
		c, err := devstack.Dial(devstack.Addr(port), token)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	// An account, an admin key and one webhook for every event type.
	svc := dial(p.SubscriptionsGRPC, stack.ServiceToken)
	accounts := webhooksv1.NewAccountServiceClient(svc)
	acct, err := accounts.CreateAccount(ctx, &webhooksv1.CreateAccountRequest{Name: "Events Co"})
	if err != nil {
		t.Fatal(err)
	}
	accountID := acct.GetAccountId()
	key, err := accounts.CreateApiKey(ctx, &webhooksv1.CreateApiKeyRequest{AccountId: accountID, UserEmail: "a@events.example", Role: webhooksv1.Role_ROLE_ADMIN})
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, s := range event.Catalog() {
		all = append(all, s.Name)
	}
	wh, err := webhooksv1.NewWebhookServiceClient(dial(p.SubscriptionsGRPC, key.GetApiKey())).CreateWebhook(ctx, &webhooksv1.CreateWebhookRequest{
		Url: rcv.URL, EventTypes: all,
		Auth: &webhooksv1.Auth{Kind: &webhooksv1.Auth_ApiKeyHeader{ApiKeyHeader: &webhooksv1.ApiKeyHeader{Name: "X-Api-Key", Value: "events-key"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := signing.ParseSecret(wh.GetSigningSecret())
	if err != nil {
		t.Fatal(err)
	}
	if err := stack.WaitIndexed(ctx, 1); err != nil {
		t.Fatal(err)
	}

	// waitEvent returns the data of the first request of eventType whose data matches.
	waitEvent := func(eventType string, match func(map[string]any) bool) map[string]any {
		t.Helper()
		var data map[string]any
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		req, err := rcv.WaitFor(wctx, func(r devstack.Request) bool {
			var env event.Envelope
			if json.Unmarshal(r.Body, &env) != nil || env.Event != eventType || env.AccountID != accountID {
				return false
			}
			var d map[string]any
			if json.Unmarshal(env.Data, &d) != nil || !match(d) {
				return false
			}
			data = d
			return true
		})
		if err != nil {
			t.Fatalf("%s: %v", eventType, err)
		}
		if err := signing.Verify(secret, req.Header, req.Body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("%s: signature: %v", eventType, err)
		}
		if got := req.Header.Get("X-Api-Key"); got != "events-key" {
			t.Errorf("%s: X-Api-Key: got %q", eventType, got)
		}
		return data
	}
	is := func(k string, v any) func(map[string]any) bool {
		return func(d map[string]any) bool { return d[k] == v }
	}

	// contacts: new_contact and contact_updated.
	contacts := contactsv1.NewContactServiceClient(dial(p.ContactsGRPC, stack.ServiceToken))
	c, err := contacts.CreateContact(ctx, &contactsv1.CreateContactRequest{AccountId: accountID,
		Contact: &contactsv1.Contact{FirstName: "Ann", LastName: "Lee", Phone: "+15551230001", Groups: []string{"vip"}}})
	if err != nil {
		t.Fatal(err)
	}
	contactID := c.GetContact().GetId()
	waitEvent(event.NewContact, is("contact_id", contactID))
	if _, err := contacts.UpdateContact(ctx, &contactsv1.UpdateContactRequest{AccountId: accountID,
		Contact: &contactsv1.Contact{Id: contactID, Email: "ann@example.com"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"email"}}}); err != nil {
		t.Fatal(err)
	}
	upd := waitEvent(event.ContactUpdated, is("contact_id", contactID))
	if fmt.Sprint(upd["changed_fields"]) != "[email]" || upd["email"] != "ann@example.com" {
		t.Errorf("contact_updated: got %v, want changed_fields [email] and the new email", upd)
	}

	// messaging: the carrier posts inbound SMS to the account's number.
	const accountNumber, carrierToken = "+15557654321", "carrier-token-e2e"
	messaging := messagingv1.NewMessagingServiceClient(dial(p.MessagingGRPC, stack.ServiceToken))
	if _, err := messaging.RegisterNumber(ctx, &messagingv1.RegisterNumberRequest{AccountId: accountID, PhoneNumber: accountNumber, CarrierAuthToken: carrierToken}); err != nil {
		t.Fatal(err)
	}
	if _, err := messaging.CreateKeyword(ctx, &messagingv1.CreateKeywordRequest{AccountId: accountID,
		Keyword: &messagingv1.Keyword{Keyword: "JOIN", Groups: []string{"Events"}, Reply: "Welcome!"}}); err != nil {
		t.Fatal(err)
	}
	inbound := "http://" + devstack.Addr(p.MessagingHTTP) + "/sms/inbound"
	sms := func(sid, from, body string) {
		t.Helper()
		form := url.Values{"MessageSid": {sid}, "From": {from}, "To": {accountNumber}, "Body": {body}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, inbound, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", twilioSignature(carrierToken, inbound, form))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("inbound SMS %q: got HTTP %d, want 200", body, resp.StatusCode)
		}
	}
	sms("SM0001", "+15551230001", "What time do you open?")
	msg := waitEvent(event.InboundMessage, is("body", "What time do you open?"))
	if id, _ := msg["message_id"].(string); id == "" || msg["contact_id"] != contactID || msg["from"] != "+15551230001" || msg["to"] != accountNumber {
		t.Errorf("inbound_message: got %v", msg)
	}
	sms("SM0002", "+15551230002", " join ")
	joined := waitEvent(event.KeywordOptIn, is("phone", "+15551230002"))
	if joined["keyword"] != "JOIN" || joined["new_contact"] != true || fmt.Sprint(joined["groups"]) != "[Events]" {
		t.Errorf("keyword_opt_in: got %v", joined)
	}
	sms("SM0003", "+15551230001", "stop")
	out := waitEvent(event.ContactOptOut, is("contact_id", contactID))
	if out["keyword"] != "STOP" || out["phone"] != "+15551230001" {
		t.Errorf("contact_opt_out: got %v", out)
	}

	// campaigns: two members of "vip", one of them opted out above.
	if _, err := contacts.CreateContact(ctx, &contactsv1.CreateContactRequest{AccountId: accountID,
		Contact: &contactsv1.Contact{FirstName: "Bo", Phone: "+15551230003", Groups: []string{"vip"}}}); err != nil {
		t.Fatal(err)
	}
	campaigns := campaignsv1.NewCampaignServiceClient(dial(p.CampaignsGRPC, stack.ServiceToken))
	cmp, err := campaigns.CreateCampaign(ctx, &campaignsv1.CreateCampaignRequest{AccountId: accountID, Name: "VIP night", Body: "See you tonight", TargetGroups: []string{"vip"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := campaigns.SendCampaign(ctx, &campaignsv1.SendCampaignRequest{AccountId: accountID, Id: cmp.GetCampaign().GetId()}); err != nil {
		t.Fatal(err)
	}
	sent := waitEvent(event.CampaignSent, is("campaign_id", cmp.GetCampaign().GetId()))
	for k, want := range map[string]float64{"audience": 2, "sent": 1, "failed": 0, "skipped_opted_out": 1} {
		if sent[k] != want {
			t.Errorf("campaign_sent.%s: got %v, want %v", k, sent[k], want)
		}
	}
	if sent["name"] != "VIP night" || sent["started_at"] == "" || sent["finished_at"] == "" {
		t.Errorf("campaign_sent: got %v", sent)
	}
}

type devstackConn = grpc.ClientConn

// twilioSignature is the carrier's X-Twilio-Signature: base64(HMAC-SHA1(token, URL + sorted
// key/value pairs)).
func twilioSignature(token, fullURL string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		for _, v := range form[k] {
			b.WriteString(k + v)
		}
	}
	mac := hmac.New(sha1.New, []byte(token))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
