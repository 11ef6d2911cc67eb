package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/customertext/webhooks/libs/contactstest"
	"github.com/customertext/webhooks/libs/event"
	messagingv1 "github.com/customertext/webhooks/libs/gen/customertext/messaging/v1"
	"github.com/customertext/webhooks/services/messaging/internal/carrier"
	"github.com/customertext/webhooks/services/messaging/internal/domain"
)

const (
	acct       = "acct_1"
	acctNumber = "+15557654321"
	carrierTok = "carrier-secret-token-1"
	janePhone  = "+15551234567"
	twimlEmpty = "<Response></Response>"
)

// TestInboundMessageEndToEnd: an unknown sender texts the account; the contact is created with
// source inbound and inbound_message reaches the EVENTS stream with Nats-Msg-Id = event id.
func TestInboundMessageEndToEnd(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	s.registerNumber(acct, "(555) 765-4321", carrierTok) // national format is normalised

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	form := smsForm("+1 555 123 4567", acctNumber, "What time do you open?", "SM0001")
	code, body := s.post(carrier.Signature(carrierTok, publicBaseURL+"/sms/inbound", form), "application/x-www-form-urlencoded; charset=UTF-8",
		http.Header{"Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"}}, form)
	if code != 200 || body != twimlEmpty {
		t.Fatalf("got %d %q, want 200 %q", code, body, twimlEmpty)
	}
	if diff := cmp.Diff([]contactstest.Created{{AccountID: acct, Phone: janePhone, Source: "inbound"}}, s.contacts.Created()); diff != "" {
		t.Errorf("created contacts (-want +got):\n%s", diff)
	}
	c, _ := s.contacts.Contact(acct, janePhone)
	evs := s.waitEvents(acct, event.InboundMessage, 1)
	got := evs[0]
	if got.MsgID != got.Env.EventID || !strings.HasPrefix(got.MsgID, "evt_") {
		t.Errorf("got Nats-Msg-Id %q for event %q, want the event id", got.MsgID, got.Env.EventID)
	}
	if tp := got.Header.Get("Traceparent"); !strings.Contains(tp, traceID) {
		t.Errorf("got traceparent %q on the event, want the carrier request's trace %s", tp, traceID)
	}
	if want := "events." + acct + ".inbound_message"; got.Subject != want {
		t.Errorf("got subject %q, want %q", got.Subject, want)
	}
	msgID, _ := got.Data["message_id"].(string)
	if !strings.HasPrefix(msgID, "msg_") {
		t.Errorf("got message_id %q, want msg_…", msgID)
	}
	want := map[string]any{"message_id": msgID, "contact_id": c.GetId(), "from": janePhone, "to": acctNumber, "body": "What time do you open?"}
	if diff := cmp.Diff(want, got.Data); diff != "" {
		t.Errorf("inbound_message data (-want +got):\n%s", diff)
	}
	if got.Env.AccountID != acct {
		t.Errorf("got account %q, want %q", got.Env.AccountID, acct)
	}
	if n := len(s.sent(acct, "")); n != 0 {
		t.Errorf("got %d replies to a plain message, want 0", n)
	}

	// A carrier retry with the same MessageSid changes nothing.
	if code, _ := s.inbound(carrierTok, smsForm(janePhone, acctNumber, "What time do you open?", "SM0001")); code != 200 {
		t.Fatalf("retry: got %d, want 200", code)
	}
	// A second message from the now known contact creates no contact.
	if code, _ := s.inbound(carrierTok, smsForm(janePhone, acctNumber, "thanks", "SM0002")); code != 200 {
		t.Fatalf("second message: got %d, want 200", code)
	}
	evs = s.waitEvents(acct, event.InboundMessage, 2)
	if len(evs) != 2 || evs[1].Data["body"] != "thanks" {
		t.Errorf("got inbound bodies %v, want the first and \"thanks\" once each", []any{evs[0].Data["body"], evs[len(evs)-1].Data["body"]})
	}
	if n := len(s.contacts.Created()); n != 1 {
		t.Errorf("got %d contacts created, want 1", n)
	}
	if n := s.rows("inbound_messages"); n != 2 {
		t.Errorf("got %d journaled messages, want 2", n)
	}
	if strings.Contains(s.logs.String(), carrierTok) {
		t.Errorf("the carrier token appears in the logs")
	}
}

// TestOptOutEndToEnd: STOP opts the contact out, sends exactly one confirmation and puts one
// contact_opt_out on the EVENTS stream; a second STOP sends nothing and emits only
// inbound_message; START opts back in.
func TestOptOutEndToEnd(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	s.registerNumber(acct, acctNumber, carrierTok)
	id := s.contacts.Add(acct, janePhone, false, "customers")

	if code, _ := s.inbound(carrierTok, smsForm(janePhone, acctNumber, "  stop ", "SM1")); code != 200 {
		t.Fatalf("STOP: got %d, want 200", code)
	}
	if c, _ := s.contacts.Contact(acct, janePhone); !c.GetOptedOut() {
		t.Errorf("after STOP: got opted_out false, want true")
	}
	optOuts := s.waitEvents(acct, event.ContactOptOut, 1)
	inbound := s.waitEvents(acct, event.InboundMessage, 1)
	want := map[string]any{"contact_id": id, "phone": janePhone, "keyword": "STOP", "message_id": inbound[0].Data["message_id"]}
	if diff := cmp.Diff(want, optOuts[0].Data); diff != "" {
		t.Errorf("contact_opt_out data (-want +got):\n%s", diff)
	}
	if optOuts[0].MsgID != optOuts[0].Env.EventID {
		t.Errorf("got Nats-Msg-Id %q, want %q", optOuts[0].MsgID, optOuts[0].Env.EventID)
	}
	replies := s.sent(acct, janePhone)
	if len(replies) != 1 || replies[0].GetBody() != domain.ReplyOptOut || replies[0].GetFrom() != acctNumber {
		t.Fatalf("got replies %v, want one opt-out confirmation from %s", replies, acctNumber)
	}

	// Retry of the same message and a second STOP: no confirmation, no contact_opt_out.
	for _, sid := range []string{"SM1", "SM2"} {
		if code, _ := s.inbound(carrierTok, smsForm(janePhone, acctNumber, "QUIT", sid)); code != 200 {
			t.Fatalf("%s: got %d, want 200", sid, code)
		}
	}
	s.waitEvents(acct, event.InboundMessage, 2)
	all := s.events(acct)
	if n := count(all, event.ContactOptOut); n != 1 {
		t.Errorf("got %d contact_opt_out events, want 1", n)
	}
	if n := count(all, event.InboundMessage); n != 2 {
		t.Errorf("got %d inbound_message events, want 2", n)
	}
	if n := len(s.sent(acct, janePhone)); n != 1 {
		t.Errorf("got %d messages to the opted-out contact, want 1", n)
	}

	// HELP is answered; START opts back in with a confirmation.
	for _, tc := range []struct{ body, sid, reply string }{{"help", "SM3", domain.ReplyHelp}, {"Start", "SM4", domain.ReplyOptIn}} {
		if code, _ := s.inbound(carrierTok, smsForm(janePhone, acctNumber, tc.body, tc.sid)); code != 200 {
			t.Fatalf("%s: got %d, want 200", tc.body, code)
		}
		msgs := s.sent(acct, janePhone)
		if got := msgs[len(msgs)-1].GetBody(); got != tc.reply {
			t.Errorf("%s: got reply %q, want %q", tc.body, got, tc.reply)
		}
	}
	if c, _ := s.contacts.Contact(acct, janePhone); c.GetOptedOut() {
		t.Errorf("after START: got opted_out true, want false")
	}
	s.waitEvents(acct, event.InboundMessage, 4)
	if n := count(s.events(acct), event.ContactOptOut); n != 1 {
		t.Errorf("after HELP and START: got %d contact_opt_out events, want 1", n)
	}
}

// TestKeywordOptInEndToEnd: a configured keyword adds the contact to the keyword's groups, sends
// its auto-reply and emits keyword_opt_in; an unknown sender is created with source
// keyword_optin.
func TestKeywordOptInEndToEnd(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	s.registerNumber(acct, acctNumber, carrierTok)
	ctx := context.Background()
	resp, err := s.client.CreateKeyword(ctx, &messagingv1.CreateKeywordRequest{AccountId: acct,
		Keyword: &messagingv1.Keyword{Keyword: "join", Groups: []string{"Events", "customers"}, Reply: "Welcome to Events!"}})
	if err != nil {
		t.Fatalf("create keyword: %v", err)
	}
	if got := resp.GetKeyword().GetKeyword(); got != "JOIN" {
		t.Errorf("got keyword %q, want JOIN", got)
	}
	const known = "+15551230002"
	knownID := s.contacts.Add(acct, known, false, "customers")

	for _, tc := range []struct{ from, sid string }{{janePhone, "SM10"}, {known, "SM11"}} {
		if code, _ := s.inbound(carrierTok, smsForm(tc.from, acctNumber, "Join", tc.sid)); code != 200 {
			t.Fatalf("JOIN from %s: got %d, want 200", tc.from, code)
		}
	}
	if diff := cmp.Diff([]contactstest.Created{{AccountID: acct, Phone: janePhone, Source: "keyword_optin", Keyword: "JOIN",
		Groups: []string{"Events", "customers"}}}, s.contacts.Created()); diff != "" {
		t.Errorf("created contacts (-want +got):\n%s", diff)
	}
	jane, _ := s.contacts.Contact(acct, janePhone)
	if diff := cmp.Diff([]string{"Events", "customers"}, jane.GetGroups()); diff != "" {
		t.Errorf("new contact's groups (-want +got):\n%s", diff)
	}
	evs := s.waitEvents(acct, event.KeywordOptIn, 2)
	byContact := map[string]map[string]any{}
	for _, e := range evs {
		byContact[e.Data["contact_id"].(string)] = e.Data
	}
	wantData := map[string]map[string]any{
		jane.GetId(): {"contact_id": jane.GetId(), "phone": janePhone, "keyword": "JOIN", "groups": []any{"Events", "customers"}, "new_contact": true},
		knownID:      {"contact_id": knownID, "phone": known, "keyword": "JOIN", "groups": []any{"Events", "customers"}, "new_contact": false},
	}
	if diff := cmp.Diff(wantData, byContact); diff != "" {
		t.Errorf("keyword_opt_in data (-want +got):\n%s", diff)
	}
	for _, to := range []string{janePhone, known} {
		msgs := s.sent(acct, to)
		if len(msgs) != 1 || msgs[0].GetBody() != "Welcome to Events!" {
			t.Errorf("replies to %s: got %v, want one auto-reply", to, msgs)
		}
	}
	if n := count(s.waitEvents(acct, event.InboundMessage, 2), event.InboundMessage); n != 2 {
		t.Errorf("got %d inbound_message events, want 2", n)
	}

	list, err := s.client.ListKeywords(ctx, &messagingv1.ListKeywordsRequest{AccountId: acct})
	if err != nil {
		t.Fatalf("list keywords: %v", err)
	}
	if len(list.GetKeywords()) != 1 || list.GetKeywords()[0].GetKeyword() != "JOIN" {
		t.Errorf("got keywords %v, want [JOIN]", list.GetKeywords())
	}
}

// TestInboundRefusals: bad signatures, unknown numbers and bad input change nothing.
func TestInboundRefusals(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	s.registerNumber(acct, acctNumber, carrierTok)
	tests := []struct {
		name  string
		token string
		form  map[string]string
		want  int
	}{
		{"missing signature", "", map[string]string{}, 403},
		{"wrong token", "not-the-token", map[string]string{}, 403},
		{"unknown To", carrierTok, map[string]string{"To": "+15550009999"}, 404},
		{"bad From", carrierTok, map[string]string{"From": "not-a-number"}, 400},
		{"body too long", carrierTok, map[string]string{"Body": strings.Repeat("x", 1601)}, 400},
		{"missing MessageSid", carrierTok, map[string]string{"MessageSid": ""}, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			form := smsForm(janePhone, acctNumber, "STOP", "SM-"+tc.name)
			for k, v := range tc.form {
				form.Set(k, v)
			}
			if code, _ := s.inbound(tc.token, form); code != tc.want {
				t.Errorf("got %d, want %d", code, tc.want)
			}
		})
	}
	// Not a form.
	if code, _ := s.post("", "application/json", nil, smsForm(janePhone, acctNumber, "STOP", "SM-json")); code != 415 {
		t.Errorf("JSON body: got %d, want 415", code)
	}
	// A valid signature over different content is refused too.
	signed := smsForm(janePhone, acctNumber, "hello", "SM-tamper")
	sig := carrier.Signature(carrierTok, publicBaseURL+"/sms/inbound", signed)
	if code, _ := s.postInbound(sig, smsForm(janePhone, acctNumber, "STOP", "SM-tamper")); code != 403 {
		t.Errorf("tampered body: got %d, want 403", code)
	}
	if n := len(s.contacts.Created()); n != 0 {
		t.Errorf("got %d contacts created by refused requests, want 0", n)
	}
	for _, table := range []string{"inbound_messages", "outbox", "sandbox_messages"} {
		if n := s.rows(table); n != 0 {
			t.Errorf("got %d rows in %s after refused requests, want 0", n, table)
		}
	}
	if m := metrics(t, s.admin); !strings.Contains(m, "messaging_inbound_signature_failures_total 3") {
		t.Errorf("signature failure metric: want 3 in\n%s", m)
	}
}

// TestMessagingAPI covers the gRPC API's validation and authentication.
func TestMessagingAPI(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want codes.Code
		msg  string
	}{
		{"register without account", func() error {
			_, err := s.client.RegisterNumber(ctx, &messagingv1.RegisterNumberRequest{PhoneNumber: acctNumber, CarrierAuthToken: "t"})
			return err
		}, codes.InvalidArgument, "account_id"},
		{"register bad phone", func() error {
			_, err := s.client.RegisterNumber(ctx, &messagingv1.RegisterNumberRequest{AccountId: acct, PhoneNumber: "123", CarrierAuthToken: "t"})
			return err
		}, codes.InvalidArgument, "phone_number"},
		{"register without token", func() error {
			_, err := s.client.RegisterNumber(ctx, &messagingv1.RegisterNumberRequest{AccountId: acct, PhoneNumber: acctNumber})
			return err
		}, codes.InvalidArgument, "carrier_auth_token"},
		{"register", func() error {
			_, err := s.client.RegisterNumber(ctx, &messagingv1.RegisterNumberRequest{AccountId: acct, PhoneNumber: acctNumber, CarrierAuthToken: "t1"})
			return err
		}, codes.OK, ""},
		{"re-register rotates the token", func() error {
			_, err := s.client.RegisterNumber(ctx, &messagingv1.RegisterNumberRequest{AccountId: acct, PhoneNumber: acctNumber, CarrierAuthToken: carrierTok})
			return err
		}, codes.OK, ""},
		{"number of another account", func() error {
			_, err := s.client.RegisterNumber(ctx, &messagingv1.RegisterNumberRequest{AccountId: "acct_2", PhoneNumber: acctNumber, CarrierAuthToken: "t"})
			return err
		}, codes.AlreadyExists, "another account"},
		{"keyword missing", func() error {
			_, err := s.client.CreateKeyword(ctx, &messagingv1.CreateKeywordRequest{AccountId: acct})
			return err
		}, codes.InvalidArgument, "keyword"},
		{"keyword reserved", func() error {
			_, err := s.client.CreateKeyword(ctx, &messagingv1.CreateKeywordRequest{AccountId: acct, Keyword: &messagingv1.Keyword{Keyword: "stop", Groups: []string{"g"}}})
			return err
		}, codes.InvalidArgument, "keyword.keyword"},
		{"keyword without groups", func() error {
			_, err := s.client.CreateKeyword(ctx, &messagingv1.CreateKeywordRequest{AccountId: acct, Keyword: &messagingv1.Keyword{Keyword: "VIP"}})
			return err
		}, codes.InvalidArgument, "keyword.groups"},
		{"keyword", func() error {
			_, err := s.client.CreateKeyword(ctx, &messagingv1.CreateKeywordRequest{AccountId: acct, Keyword: &messagingv1.Keyword{Keyword: "VIP", Groups: []string{"g"}}})
			return err
		}, codes.OK, ""},
		{"keyword twice", func() error {
			_, err := s.client.CreateKeyword(ctx, &messagingv1.CreateKeywordRequest{AccountId: acct, Keyword: &messagingv1.Keyword{Keyword: "vip", Groups: []string{"g"}}})
			return err
		}, codes.AlreadyExists, "VIP"},
		{"list sent bad to", func() error {
			_, err := s.client.ListSentMessages(ctx, &messagingv1.ListSentMessagesRequest{AccountId: acct, To: "x"})
			return err
		}, codes.InvalidArgument, "to"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if got := status.Code(err); got != tc.want {
				t.Fatalf("got %v (%v), want %v", got, err, tc.want)
			}
			if !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Errorf("got message %q, want it to mention %q", status.Convert(err).Message(), tc.msg)
			}
		})
	}
	if strings.Contains(s.logs.String(), carrierTok) {
		t.Errorf("the carrier token appears in the logs")
	}
	var stored string
	if err := s.db.QueryRow(ctx, `SELECT carrier_auth_token FROM numbers WHERE phone_number = $1`, acctNumber).Scan(&stored); err != nil {
		t.Fatalf("read stored token: %v", err)
	}
	if strings.Contains(stored, carrierTok) || !strings.HasPrefix(stored, "k1:") {
		t.Errorf("stored token %q: want it encrypted with key k1", stored)
	}
	// The rotated token is the one that validates.
	if code, _ := s.inbound("t1", smsForm(janePhone, acctNumber, "hi", "SM-old")); code != 403 {
		t.Errorf("old token: got %d, want 403", code)
	}
	if code, _ := s.inbound(carrierTok, smsForm(janePhone, acctNumber, "hi", "SM-new")); code != 200 {
		t.Errorf("new token: got %d, want 200", code)
	}

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + s.admin + path)
		if err != nil {
			t.Fatalf("get %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: got %d, want 200", path, resp.StatusCode)
		}
	}
	if m := metrics(t, s.admin); !strings.Contains(m, `messaging_inbound_messages_total{kind="message"} 1`) ||
		!strings.Contains(m, `outbox_published_total{schema="messaging"}`) {
		t.Errorf("metrics: want the inbound counter at 1 and the relay's counters")
	}

	// Without the service credential every RPC is refused.
	conn, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer conn.Close()
	_, err = messagingv1.NewMessagingServiceClient(conn).ListKeywords(ctx, &messagingv1.ListKeywordsRequest{AccountId: acct})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("without credential: got %v, want Unauthenticated", err)
	}
}

// TestEventsWaitForNATS: messaging starts and handles inbound SMS while NATS is down; the
// events wait in the outbox and reach the EVENTS stream, once each, when NATS comes up.
func TestEventsWaitForNATS(t *testing.T) {
	t.Parallel()
	s := startStackWith(t, stackOptions{natsDown: true})
	s.registerNumber(acct, acctNumber, carrierTok)
	s.contacts.Add(acct, janePhone, false)
	if code, _ := s.inbound(carrierTok, smsForm(janePhone, acctNumber, "STOP", "SM1")); code != 200 {
		t.Fatalf("STOP while NATS is down: got %d, want 200", code)
	}
	if n := s.rows("outbox"); n != 2 {
		t.Fatalf("got %d events waiting in the outbox, want 2", n)
	}
	s.startNATS()
	s.waitEvents(acct, event.ContactOptOut, 1)
	s.waitEvents(acct, event.InboundMessage, 1)
	deadline := time.Now().Add(waitFor)
	for s.rows("outbox") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("outbox not drained after NATS came up")
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
	if n := len(s.events(acct)); n != 2 {
		t.Errorf("got %d events on the stream, want 2", n)
	}
}
