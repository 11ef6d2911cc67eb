package worker

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/identity"
)

func TestParseJob(t *testing.T) {
	t.Parallel()
	valid := func() *webhooksv1.DeliveryJob {
		return &webhooksv1.DeliveryJob{DeliveryId: "del_1_wh", EventId: "evt_1", EventType: "new_contact",
			AccountId: "acc", WebhookId: "wh", Attempt: 1, Payload: []byte(`{}`)}
	}
	tests := []struct {
		name    string
		mutate  func(j *webhooksv1.DeliveryJob)
		wantErr string
	}{
		{"valid", func(*webhooksv1.DeliveryJob) {}, ""},
		{"no delivery id", func(j *webhooksv1.DeliveryJob) { j.DeliveryId = "" }, "delivery_id"},
		{"delivery id with a dot", func(j *webhooksv1.DeliveryJob) { j.DeliveryId = "a.b" }, "delivery_id"},
		{"no webhook", func(j *webhooksv1.DeliveryJob) { j.WebhookId = "" }, "webhook_id"},
		{"no account", func(j *webhooksv1.DeliveryJob) { j.AccountId = "" }, "account_id"},
		{"no event", func(j *webhooksv1.DeliveryJob) { j.EventId = "" }, "event_id"},
		{"attempt 0", func(j *webhooksv1.DeliveryJob) { j.Attempt = 0 }, "attempt"},
		{"event id of 5000 bytes", func(j *webhooksv1.DeliveryJob) { j.EventId = strings.Repeat("e", 5000) }, "event_id"},
		{"webhook id with a star", func(j *webhooksv1.DeliveryJob) { j.WebhookId = "wh*" }, "webhook_id"},
		{"generation with a dot", func(j *webhooksv1.DeliveryJob) { j.Generation = "g.1" }, "generation"},
		{"valid generation", func(j *webhooksv1.DeliveryJob) { j.Generation = "r1abc" }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := valid()
			tc.mutate(j)
			b, _ := proto.Marshal(j)
			_, err := ParseJob(b)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("got %v, want an error naming %s", err, tc.wantErr)
			}
		})
	}
	if _, err := ParseJob([]byte{0xff, 0xff, 0xff}); err == nil {
		t.Error("garbage: got no error, want one")
	}
}

func FuzzParseJob(f *testing.F) {
	b, _ := proto.Marshal(&webhooksv1.DeliveryJob{DeliveryId: "d", EventId: "e", AccountId: "a", WebhookId: "w", Attempt: 2})
	f.Add(b)
	f.Add([]byte{})
	f.Add([]byte("not a protobuf"))
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := ParseJob(b)
		if err != nil {
			return
		}
		if j.GetAttempt() < 1 || j.GetDeliveryId() == "" || strings.ContainsAny(j.GetDeliveryId(), ".*> ") {
			t.Fatalf("accepted an invalid job: %v", j)
		}
		for _, err := range []error{identity.Delivery(j.GetDeliveryId()), identity.Event(j.GetEventId()),
			identity.Account(j.GetAccountId()), identity.Webhook(j.GetWebhookId())} {
			if err != nil {
				t.Fatalf("accepted a job whose ids break the identity rule: %v", err)
			}
		}
	})
}

func TestLaneOf(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"deliveries.ready.default.del_1": "default",
		"deliveries.ready.bulk.del_1":    "bulk",
		"deliveries.sched.del_1":         "default",
		"garbage":                        "default",
	}
	for in, want := range tests {
		if got := LaneOf(in); got != want {
			t.Errorf("LaneOf(%q): got %q, want %q", in, got, want)
		}
	}
}

func TestScheduleMsg(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 4, 25, 14, 30, 0, 123456789, time.FixedZone("x", 3600))
	trace := nats.Header{}
	trace.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	job := &webhooksv1.DeliveryJob{DeliveryId: "del_1_wh", Attempt: 3}
	m, err := ScheduleMsg(job, "bulk", at, "del_1_wh.3", trace)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Nats-Schedule":        "@at 2026-04-25T13:30:00.123456789Z",
		"Nats-Schedule-Target": "deliveries.ready.bulk.del_1_wh",
		"Nats-Msg-Id":          "del_1_wh.3",
		"Traceparent":          trace.Get("traceparent"),
	}
	for k, v := range want {
		if got := m.Header.Get(k); got != v {
			t.Errorf("header %s: got %q, want %q", k, got, v)
		}
	}
	if m.Subject != "deliveries.sched.del_1_wh" {
		t.Errorf("subject: got %s, want deliveries.sched.del_1_wh", m.Subject)
	}
	got := &webhooksv1.DeliveryJob{}
	if err := proto.Unmarshal(m.Data, got); err != nil || got.GetAttempt() != 3 {
		t.Errorf("body: got attempt %d (err %v), want 3", got.GetAttempt(), err)
	}
}
