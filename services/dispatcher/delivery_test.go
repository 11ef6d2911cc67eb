package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/customertext/webhooks/libs/delivery"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/signing"
	"github.com/customertext/webhooks/libs/streams"
)

func TestDeliversSignedEventsToMatchingWebhooks(t *testing.T) {
	t.Parallel()
	_, url := startNATS(t)
	_, js := connectJS(t, url)

	rcvAPIKey := startReceiver(t, nil)
	rcvBearer := startReceiver(t, nil)
	rcvOther := startReceiver(t, nil)

	cfgAPIKey, secA := webhookConfig(t, "wh_apikey", "acc_1", rcvAPIKey.srv.URL+"/hook?x=1", "new_contact", "inbound_message")
	cfgAPIKey.AuthHeaderName, cfgAPIKey.AuthHeaderValue = "X-Api-Key", "k-secret-123"
	// A rotation in progress: the previous secret still signs until it expires.
	prevSec, prevText, err := signing.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	cfgAPIKey.Secrets = append(cfgAPIKey.Secrets, &webhooksv1.SigningSecret{Secret: prevText, ExpireTime: timestamppb.New(time.Now().Add(time.Hour))})
	cfgBearer, secB := webhookConfig(t, "wh_bearer", "acc_1", rcvBearer.srv.URL, "new_contact")
	cfgBearer.AuthHeaderName, cfgBearer.AuthHeaderValue = "Authorization", "Bearer tok-secret-456"
	cfgOptOut, _ := webhookConfig(t, "wh_optout", "acc_1", rcvOther.srv.URL, "contact_opt_out")
	cfgDisabled, _ := webhookConfig(t, "wh_disabled", "acc_1", rcvOther.srv.URL, "new_contact")
	cfgDisabled.Enabled = false
	cfgOtherAccount, _ := webhookConfig(t, "wh_acc2", "acc_2", rcvOther.srv.URL, "new_contact")
	cs := startConfigServer(t, cfgAPIKey, cfgBearer, cfgOptOut, cfgDisabled, cfgOtherAccount)

	attempts := newAttemptReader(t, js)
	startDispatcher(t, dispatcherEnv(url, cs.addr))

	ev := publishEvent(t, js, "acc_1", newContact("c1"))
	wantBody, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}

	var recs []*webhooksv1.AttemptRecord
	eventually(t, 30*time.Second, "two attempt records", func() bool {
		recs = attempts.poll(t)
		return len(recs) >= 2
	})

	tests := []struct {
		name       string
		rcv        *receiver
		secrets    []signing.Secret
		authHeader string
		authValue  string
		webhookID  string
	}{
		{"api key header and rotated secrets", rcvAPIKey, []signing.Secret{secA, prevSec}, "X-Api-Key", "k-secret-123", "wh_apikey"},
		{"bearer token", rcvBearer, []signing.Secret{secB}, "Authorization", "Bearer tok-secret-456", "wh_bearer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.rcv.requests()
			if len(got) != 1 {
				t.Fatalf("requests: got %d, want 1", len(got))
			}
			r := got[0]
			if string(r.Body) != string(wantBody) {
				t.Errorf("body: got %s, want %s", r.Body, wantBody)
			}
			for _, sec := range tc.secrets {
				if err := signing.Verify(sec, r.Header, r.Body, time.Now(), 5*time.Minute); err != nil {
					t.Errorf("signature with one of the webhook's secrets: %v", err)
				}
			}
			checks := map[string]string{
				"Content-Type":   "application/json",
				"User-Agent":     "CustomerText-Webhooks/1.2.3-test",
				signing.HeaderID: ev.EventID,
				tc.authHeader:    tc.authValue,
			}
			for k, want := range checks {
				if got := r.Header.Get(k); got != want {
					t.Errorf("header %s: got %q, want %q", k, got, want)
				}
			}
			var rec *webhooksv1.AttemptRecord
			for _, x := range recs {
				if x.GetWebhookId() == tc.webhookID {
					rec = x
				}
			}
			if rec == nil {
				t.Fatalf("no attempt record for %s", tc.webhookID)
			}
			if rec.GetOutcome() != webhooksv1.Outcome_OUTCOME_SUCCEEDED || rec.GetAttempt() != 1 || rec.GetResponseStatus() != 200 {
				t.Errorf("record: got outcome %v attempt %d status %d, want SUCCEEDED 1 200", rec.GetOutcome(), rec.GetAttempt(), rec.GetResponseStatus())
			}
			if diff := cmp.Diff(wantBody, rec.GetPayload()); diff != "" {
				t.Errorf("record payload (-want +got):\n%s", diff)
			}
			if got := rec.GetRequestHeaders()[lower(tc.authHeader)]; got != delivery.Redacted {
				t.Errorf("recorded auth header: got %q, want %q", got, delivery.Redacted)
			}
			if rec.GetEventId() != ev.EventID || rec.GetAccountId() != "acc_1" || rec.GetEventType() != "new_contact" {
				t.Errorf("record identity: got event %s account %s type %s", rec.GetEventId(), rec.GetAccountId(), rec.GetEventType())
			}
			if want := "del_" + ev.EventID[len("evt_"):] + "_" + tc.webhookID; rec.GetDeliveryId() != want {
				t.Errorf("delivery id: got %s, want %s", rec.GetDeliveryId(), want)
			}
			if rec.GetResponseBody() != "status 200" {
				t.Errorf("response body: got %q, want %q", rec.GetResponseBody(), "status 200")
			}
		})
	}
	if n := len(recs); n != 2 {
		t.Errorf("attempt records: got %d, want 2 (only the enabled new_contact webhooks of acc_1)", n)
	}
	if n := rcvOther.count(); n != 0 {
		t.Errorf("requests to non-matching webhooks: got %d, want 0", n)
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

func TestFanoutTerminatesGarbageEvents(t *testing.T) {
	t.Parallel()
	_, url := startNATS(t)
	_, js := connectJS(t, url)
	rcv := startReceiver(t, nil)
	cfg, _ := webhookConfig(t, "wh_1", "acc_1", rcv.srv.URL, "new_contact")
	cs := startConfigServer(t, cfg)
	startDispatcher(t, dispatcherEnv(url, cs.addr))

	valid := publishEvent(t, js, "acc_1", newContact("c0"))
	validBody, _ := valid.Marshal()
	garbage := []struct {
		name    string
		subject string
		body    []byte
	}{
		{"not json", "events.acc_1.new_contact", []byte("{{{ not json")},
		{"unknown type", "events.acc_1.contact_exploded", []byte(`{"event":"contact_exploded","event_id":"evt_x","timestamp":"2026-01-01T00:00:00Z","account_id":"acc_1","data":{}}`)},
		{"account mismatch", "events.acc_2.new_contact", validBody},
		{"type mismatch", "events.acc_1.inbound_message", validBody},
		{"bad subject", "events.acc_1.new_contact.extra", validBody},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, g := range garbage {
		m := nats.NewMsg(g.subject)
		m.Data = g.body
		if _, err := js.PublishMsg(ctx, m, jetstream.WithMsgID("garbage-"+string(rune('a'+i)))); err != nil {
			t.Fatalf("publish %s: %v", g.name, err)
		}
	}
	after := publishEvent(t, js, "acc_1", newContact("c1"))

	eventually(t, 30*time.Second, "both valid events delivered", func() bool {
		ids := rcv.distinctIDs()
		return ids[valid.EventID] >= 1 && ids[after.EventID] >= 1
	})
	cons, err := js.Consumer(ctx, streams.Events, streams.FanoutConsumer)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "fan-out consumer settled (garbage terminated, not redelivered)", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
	})
	if n := rcv.count(); n != 2 {
		t.Errorf("requests: got %d, want 2", n)
	}
}

func TestFanoutPublishesOneDedupedJobPerWebhook(t *testing.T) {
	t.Parallel()
	_, url := startNATS(t)
	_, js := connectJS(t, url)
	rcv := startReceiver(t, func(int, *http.Request) int { return http.StatusNoContent })
	var cfgs []*webhooksv1.WebhookConfig
	for _, id := range []string{"wh_1", "wh_2", "wh_3", "wh_4", "wh_5"} {
		c, _ := webhookConfig(t, id, "acc_1", rcv.srv.URL+"/"+id, "inbound_message", "new_contact")
		cfgs = append(cfgs, c)
	}
	cs := startConfigServer(t, cfgs...)
	startDispatcher(t, dispatcherEnv(url, cs.addr))

	const events = 20
	for i := range events {
		publishEvent(t, js, "acc_1", newContact("c"+string(rune('a'+i))))
	}
	eventually(t, 60*time.Second, "every (event, webhook) delivered", func() bool { return rcv.count() >= events*5 })
	ids := rcv.distinctIDs()
	if len(ids) != events {
		t.Errorf("distinct events delivered: got %d, want %d", len(ids), events)
	}
	for id, n := range ids {
		if n != 5 {
			t.Errorf("event %s: got %d requests, want 5 (one per webhook)", id, n)
		}
	}
}
