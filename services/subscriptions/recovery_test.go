package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/customertext/webhooks/libs/event"
	eventsv1 "github.com/customertext/webhooks/libs/gen/customertext/events/v1"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/streams"
)

// publishEvent puts an event on EVENTS as an outbox relay would and returns its body and the
// time the stream stored it.
func (e *env) publishEvent(accountID string, payload proto.Message) ([]byte, time.Time) {
	e.t.Helper()
	ctx := context.Background()
	env, err := event.New(accountID, payload, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	body, err := env.Marshal()
	if err != nil {
		e.t.Fatal(err)
	}
	msg := nats.NewMsg(streams.EventSubject(accountID, env.Event))
	msg.Data = body
	msg.Header.Set(jetstream.MsgIDHeader, env.EventID)
	ack, err := e.js.PublishMsg(ctx, msg)
	if err != nil {
		e.t.Fatalf("publish event: %v", err)
	}
	stored, err := e.js.Stream(ctx, streams.Events)
	if err != nil {
		e.t.Fatal(err)
	}
	raw, err := stored.GetMsg(ctx, ack.Sequence)
	if err != nil {
		e.t.Fatal(err)
	}
	return body, raw.Time
}

func contact(name string) *eventsv1.NewContact {
	return &eventsv1.NewContact{ContactId: "c_" + name, FirstName: name, Phone: "+15551234567", Source: "manual"}
}

// TestEventSamples: the account's most recent real events of the type, newest first, at most 3,
// byte-for-byte the webhook body; the catalog sample when there are none; never another
// account's events.
func TestEventSamples(t *testing.T) {
	e := newEnv(t)
	accountA, keysA := e.account("A")
	_, keysB := e.account("B")
	var bodies [][]byte
	for i := range 5 {
		b, _ := e.publishEvent(accountA, contact(fmt.Sprintf("n%d", i)))
		bodies = append(bodies, b)
	}
	e.publishEvent(accountA, &eventsv1.InboundMessage{MessageId: "m_1", ContactId: "c_x", From: "+15551234567", To: "+15557654321", Body: "hi"})

	c := e.rest(t)
	var got []map[string]any
	c.call("GET", "/v1/event-types/new_contact/samples", keysA[webhooksv1.Role_ROLE_ADMIN], nil, 200, &got)
	var want []map[string]any
	for _, i := range []int{4, 3, 2} {
		var m map[string]any
		if err := json.Unmarshal(bodies[i], &m); err != nil {
			t.Fatal(err)
		}
		want = append(want, m)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("samples of A (-want +got):\n%s", diff)
	}

	c.call("GET", "/v1/event-types/new_contact/samples", keysB[webhooksv1.Role_ROLE_ADMIN], nil, 200, &got)
	if len(got) != 1 || got[0]["test"] != true || got[0]["account_id"] == accountA {
		t.Errorf("samples of B: got %v, want only the catalog sample", got)
	}
	c.wantError("GET", "/v1/event-types/no_such_event/samples", keysA[webhooksv1.Role_ROLE_ADMIN], nil, 400, "INVALID_ARGUMENT")
}

// TestRecoverEvents: every event of the webhook's account and types since the start time is
// queued once on the bulk lane as the dispatcher's delivery of (event, webhook); repeating the
// recovery queues nothing more; a time beyond EVENTS' retention is refused.
func TestRecoverEvents(t *testing.T) {
	e := newEnv(t)
	accountA, keysA := e.account("A")
	accountB, _ := e.account("B")
	admin := as(keysA[webhooksv1.Role_ROLE_ADMIN])
	wh := e.createWebhook(admin, validCreate()).GetWebhook()

	_, before := e.publishEvent(accountA, contact("old"))
	start := before.Add(time.Millisecond)
	for !time.Now().After(start) {
		time.Sleep(time.Millisecond)
	}
	var wantIDs []string
	for i := range 4 {
		b, _ := e.publishEvent(accountA, contact(fmt.Sprintf("n%d", i)))
		env, err := event.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		wantIDs = append(wantIDs, "del_"+strings.TrimPrefix(env.EventID, "evt_")+"_"+wh.GetId())
	}
	e.publishEvent(accountA, &eventsv1.InboundMessage{MessageId: "m_1", ContactId: "c_x", From: "+15551234567", To: "+15557654321", Body: "hi"})
	e.publishEvent(accountB, contact("b"))

	resp, err := e.webhooks.RecoverEvents(admin, &webhooksv1.RecoverEventsRequest{WebhookId: wh.GetId(), StartTime: timestamppb.New(start)})
	if err != nil {
		t.Fatalf("RecoverEvents: %v", err)
	}
	if resp.GetEventsScanned() != 4 || resp.GetDeliveriesQueued() != 4 {
		t.Fatalf("RecoverEvents: got scanned %d queued %d, want 4 and 4", resp.GetEventsScanned(), resp.GetDeliveriesQueued())
	}
	queued := e.bulkJobs()
	if diff := cmp.Diff(wantIDs, queued); diff != "" {
		t.Errorf("jobs on the bulk lane (-want +got):\n%s", diff)
	}

	again, err := e.webhooks.RecoverEvents(admin, &webhooksv1.RecoverEventsRequest{WebhookId: wh.GetId(), StartTime: timestamppb.New(start)})
	if err != nil {
		t.Fatalf("RecoverEvents again: %v", err)
	}
	if again.GetEventsScanned() != 4 || again.GetDeliveriesQueued() != 0 {
		t.Errorf("RecoverEvents again: got scanned %d queued %d, want 4 and 0", again.GetEventsScanned(), again.GetDeliveriesQueued())
	}
	if n := len(e.bulkJobs()); n != 4 {
		t.Errorf("jobs after the repeat: %d, want still 4", n)
	}
	for sample, want := range map[string]float64{
		"subscriptions_recovery_events_scanned_total":    8,
		"subscriptions_recovery_deliveries_queued_total": 4,
	} {
		if got := e.metric(sample); got != want {
			t.Errorf("%s: got %v, want %v", sample, got, want)
		}
	}

	_, err = e.webhooks.RecoverEvents(admin, &webhooksv1.RecoverEventsRequest{WebhookId: wh.GetId(),
		StartTime: timestamppb.New(time.Now().Add(-7*24*time.Hour - time.Minute))})
	wantCode(t, err, codes.InvalidArgument)
	if f := fieldOf(err); f != "start_time" {
		t.Errorf("field: got %q, want start_time", f)
	}
}

// bulkJobs returns the delivery ids of the jobs waiting on the bulk lane, in stream order.
func (e *env) bulkJobs() []string {
	e.t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, streams.Deliveries)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if !strings.HasPrefix(m.Subject, "deliveries.ready.bulk.") {
			continue
		}
		job := &webhooksv1.DeliveryJob{}
		if err := proto.Unmarshal(m.Data, job); err != nil {
			e.t.Fatal(err)
		}
		if job.GetAttempt() != 1 || len(job.GetPayload()) == 0 || m.Subject != streams.ReadySubject("bulk", job.GetDeliveryId()) {
			e.t.Errorf("job %s on %s: %v", job.GetDeliveryId(), m.Subject, job)
		}
		ids = append(ids, job.GetDeliveryId())
	}
	return ids
}

// metric reads one unlabelled sample from the service's /metrics.
func (e *env) metric(name string) float64 {
	e.t.Helper()
	resp, err := http.Get("http://" + e.addrs.Admin + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				e.t.Fatal(err)
			}
			return f
		}
	}
	e.t.Fatalf("/metrics has no %s", name)
	return 0
}
