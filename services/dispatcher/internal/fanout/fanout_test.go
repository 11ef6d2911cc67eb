package fanout

import (
	"errors"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/customertext/webhooks/libs/event"
	eventsv1 "github.com/customertext/webhooks/libs/gen/customertext/events/v1"
	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/services/dispatcher/internal/index"
	"github.com/customertext/webhooks/services/dispatcher/internal/metrics"
)

func TestParseEvent(t *testing.T) {
	t.Parallel()
	env, err := event.New("acc_1", &eventsv1.NewContact{ContactId: "c1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := env.Marshal()
	tests := []struct {
		name, subject string
		body          []byte
		wantReason    string
	}{
		{"valid", "events.acc_1.new_contact", body, ""},
		{"bad subject", "events.acc_1", body, "bad_subject"},
		{"not json", "events.acc_1.new_contact", []byte("nope"), "unparseable"},
		{"unknown type", "events.acc_1.exploded", []byte(`{"event":"exploded","event_id":"e","timestamp":"2026-01-01T00:00:00Z","account_id":"acc_1","data":{}}`), "unknown_type"},
		{"other account", "events.acc_2.new_contact", body, "subject_mismatch"},
		{"other type", "events.acc_1.campaign_sent", body, "subject_mismatch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := ParseEvent(tc.subject, tc.body)
			var inv invalidError
			switch {
			case tc.wantReason == "" && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tc.wantReason == "" && got.EventID != env.EventID:
				t.Errorf("event id: got %s, want %s", got.EventID, env.EventID)
			case tc.wantReason != "" && !errors.As(err, &inv):
				t.Fatalf("got error %v, want an invalid event (%s)", err, tc.wantReason)
			case tc.wantReason != "" && inv.reason != tc.wantReason:
				t.Errorf("reason: got %s, want %s", inv.reason, tc.wantReason)
			}
		})
	}
}

func FuzzParseEvent(f *testing.F) {
	env, _ := event.New("acc_1", &eventsv1.NewContact{ContactId: "c1"}, time.Now())
	body, _ := env.Marshal()
	f.Add("events.acc_1.new_contact", body)
	f.Add("events.acc_1.new_contact", []byte(`{"event":"new_contact"}`))
	f.Add("events..", []byte(`{}`))
	f.Fuzz(func(t *testing.T, subject string, body []byte) {
		got, _, err := ParseEvent(subject, body)
		if err != nil {
			var inv invalidError
			if !errors.As(err, &inv) {
				t.Fatalf("error %v is not an invalid-event error", err)
			}
			return
		}
		if streams.EventSubject(got.AccountID, got.Event) != subject {
			t.Fatalf("accepted %s for an event of %s/%s", subject, got.AccountID, got.Event)
		}
	})
}

func TestDeliveryID(t *testing.T) {
	t.Parallel()
	if got, want := DeliveryID("evt_0190-abc", "wh_1"), "del_0190-abc_wh_1"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestFairness(t *testing.T) {
	t.Parallel()
	clk := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	replicas := 1
	f := NewFairness(10, 20, func() int { return replicas }) // 10 jobs/s, burst 20, across replicas
	f.now = func() time.Time { return clk }
	steps := []struct {
		name     string
		replicas int
		account  string
		jobs     int
		advance  time.Duration
		want     string
	}{
		{"within the burst", 1, "a", 15, 0, DefaultLane},
		{"over the burst goes bulk", 1, "a", 10, 0, BulkLane},
		{"another account is unaffected", 1, "b", 20, 0, DefaultLane},
		{"refilled at the rate", 1, "a", 10, 500 * time.Millisecond, DefaultLane},
		{"empty again", 1, "a", 1, 0, BulkLane},
		{"two replicas: half the burst each", 2, "c", 11, 0, BulkLane},
		{"two replicas: within half the burst", 2, "c", 10, 0, DefaultLane},
		{"two replicas: refilled at half the rate", 2, "c", 5, time.Second, DefaultLane},
		{"two replicas: no more than half the rate", 2, "c", 1, 0, BulkLane},
	}
	for _, st := range steps {
		replicas = st.replicas
		clk = clk.Add(st.advance)
		if got := f.Lane(st.account, st.jobs); got != st.want {
			t.Errorf("%s: got %s, want %s", st.name, got, st.want)
		}
	}
}

// fakeEvent is an EVENTS message as plan reads it.
type fakeEvent struct {
	jetstream.Msg
	subject string
	data    []byte
	header  nats.Header
}

func (m fakeEvent) Subject() string      { return m.subject }
func (m fakeEvent) Data() []byte         { return m.data }
func (m fakeEvent) Headers() nats.Header { return m.header }

type oneHook struct{}

func (oneHook) Match(account, _ string) []index.Webhook {
	return []index.Webhook{{ID: "wh_1", AccountID: account}}
}

// TestPlanMarksLateness: an API call's event tells the workers when it occurred, so that they
// measure the default lane's lateness from there; an event relayed from bulk rows does not,
// since the relay paces those on purpose.
func TestPlanMarksLateness(t *testing.T) {
	t.Parallel()
	occurred := time.Date(2026, 11, 27, 3, 0, 0, 123456789, time.UTC)
	env, err := event.New("acc_1", &eventsv1.NewContact{ContactId: "c1"}, occurred)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := env.Marshal()
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	f := New(nil, nil, oneHook{}, nil, m, slog.New(slog.DiscardHandler), Config{})
	tests := []struct {
		name   string
		header nats.Header
		want   string
	}{
		{"api call", nats.Header{}, strconv.FormatInt(occurred.UnixNano(), 10)},
		{"bulk write", nats.Header{streams.BulkEventHeader: {"1"}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			jobs, err := f.plan(fakeEvent{subject: streams.EventSubject("acc_1", event.NewContact), data: body, header: tc.header})
			if err != nil || len(jobs) != 1 {
				t.Fatalf("plan: got %d jobs, %v; want 1 job", len(jobs), err)
			}
			if got := jobs[0].Header.Get(streams.LatenessFromHeader); got != tc.want {
				t.Errorf("%s: got %q, want %q", streams.LatenessFromHeader, got, tc.want)
			}
		})
	}
}
