package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/customertext/webhooks/e2e/chaos"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/streams"
)

// poisonMsg is one malformed message published raw on a stream.
type poisonMsg struct {
	label string
	msg   *nats.Msg
}

func poison(ctx context.Context, s *session) error {
	a, _, err := s.account(ctx, "poison", "ok1", "ok2")
	if err != nil {
		return err
	}
	s.load(ctx, a, s.rate())
	s.sleep(ctx, s.d(2*time.Second, 10*time.Second))
	msgs := poisonMessages(a.ID)
	for round := range s.rounds() {
		published, refused := 0, 0
		for _, pm := range msgs {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := s.p.JetStream().PublishMsg(pctx, copyMsg(pm.msg))
			cancel()
			if err != nil {
				refused++
				s.logf("poison %s refused by the server: %v", pm.label, err)
				continue
			}
			published++
		}
		s.logf("round %d: %d poison messages published, %d refused at the door", round+1, published, refused)
		s.sleep(ctx, s.d(4*time.Second, 15*time.Second))
	}
	s.stop()
	return nil
}

func copyMsg(m *nats.Msg) *nats.Msg {
	c := nats.NewMsg(m.Subject)
	c.Data = m.Data
	for k, v := range m.Header {
		c.Header[k] = v
	}
	return c
}

// poisonMessages is every malformed input the streams may meet: on EVENTS well-formed envelopes
// whose event_id cannot travel in a subject (5,000 characters, a space, '.', '*', '>'), garbage
// bytes, an empty body, a subject that disagrees with the body, and an oversized event; on
// DELIVERIES and ATTEMPTS garbage jobs, batches and records.
func poisonMessages(accountID string) []poisonMsg {
	envelope := func(id, contact string, pad int) []byte {
		b, _ := json.Marshal(map[string]any{
			"event": "new_contact", "event_id": id, "timestamp": time.Now().UTC().Format(time.RFC3339),
			"account_id": accountID,
			"data":       map[string]any{"contact_id": contact, "first_name": strings.Repeat("x", pad), "phone": "+15550000000"},
		})
		return b
	}
	event := func(label, id string, body []byte) poisonMsg {
		m := nats.NewMsg(streams.EventSubject(accountID, "new_contact"))
		m.Data = body
		if id != "" {
			m.Header.Set(nats.MsgIdHdr, id)
		}
		return poisonMsg{"EVENTS " + label, m}
	}
	raw := func(label, subject string, body []byte, hdr ...string) poisonMsg {
		m := nats.NewMsg(subject)
		m.Data = body
		for i := 0; i+1 < len(hdr); i += 2 {
			m.Header.Set(hdr[i], hdr[i+1])
		}
		return poisonMsg{label, m}
	}
	garbage := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return b
	}
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	long := strings.Repeat("e", 5000)
	msgs := []poisonMsg{
		event("event_id of 5,000 characters", long+suffix, envelope(long+suffix, "poison-long", 0)),
		event("event_id with a space", "has space "+suffix, envelope("has space "+suffix, "poison-space", 0)),
		event("event_id with '.'", "has.dot."+suffix, envelope("has.dot."+suffix, "poison-dot", 0)),
		event("event_id with '*'", "has*star"+suffix, envelope("has*star"+suffix, "poison-star", 0)),
		event("event_id with '>'", "has>gt"+suffix, envelope("has>gt"+suffix, "poison-gt", 0)),
		event("garbage bytes", "", garbage(512)),
		event("empty body", "", nil),
		event("oversized event (300 KiB)", "big-"+suffix, envelope("big-"+suffix, "poison-big", 300<<10)),
		raw("EVENTS subject for another account", streams.EventSubject("acct_other", "new_contact"),
			envelope("mismatch-"+suffix, "poison-mismatch", 0)),
		raw("DELIVERIES garbage job (default lane)", streams.ReadySubject("default", "del_garbage_"+suffix), garbage(256)),
		raw("DELIVERIES garbage job (bulk lane)", streams.ReadySubject("bulk", "del_garbage_"+suffix), garbage(256)),
		raw("DELIVERIES empty job", streams.ReadySubject("default", "del_empty_"+suffix), nil),
		raw("DELIVERIES job with a garbage lateness header", streams.ReadySubject("default", "del_hdr_"+suffix), garbage(64),
			streams.LatenessFromHeader, "not-a-number"),
		raw("DELIVERIES oversized job (600 KiB)", streams.ReadySubject("default", "del_big_"+suffix), garbage(600<<10)),
		raw("ATTEMPTS garbage batch", streams.AttemptBatchSubject, garbage(256), streams.AttemptBatchHeader, "1"),
		raw("ATTEMPTS garbage record", streams.AttemptSubject(accountID), garbage(256)),
		raw("ATTEMPTS empty record", streams.AttemptSubject(accountID), nil),
	}
	return msgs
}

func disableReq(id string) *webhooksv1.DisableWebhookRequest {
	return &webhooksv1.DisableWebhookRequest{Id: id}
}

func enableReq(id string) *webhooksv1.EnableWebhookRequest {
	return &webhooksv1.EnableWebhookRequest{Id: id}
}

func redeliverReq(id string) *webhooksv1.RedeliverFailedRequest {
	return &webhooksv1.RedeliverFailedRequest{WebhookId: id}
}

// waitDeadLetters waits until the delivery log holds want dead-lettered deliveries of a webhook,
// and returns how many it holds.
func waitDeadLetters(ctx context.Context, a *chaos.Account, webhookID string, want int, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		seen := map[string]bool{}
		token := ""
		var lerr error
		for {
			resp, err := a.Hooks.ListDeliveryAttempts(ctx, &webhooksv1.ListDeliveryAttemptsRequest{WebhookId: webhookID,
				Outcome: webhooksv1.Outcome_OUTCOME_DEAD_LETTERED, PageSize: 100, PageToken: token})
			if err != nil {
				lerr = err
				break
			}
			for _, at := range resp.GetAttempts() {
				seen[at.GetDeliveryId()] = true
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		if lerr == nil && len(seen) >= want {
			return len(seen), nil
		}
		if time.Now().After(deadline) {
			return len(seen), fmt.Errorf("delivery log holds %d of %d dead letters after %s (last error: %v)", len(seen), want, timeout, lerr)
		}
		select {
		case <-ctx.Done():
			return len(seen), ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
