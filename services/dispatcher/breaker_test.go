package main

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
)

// TestOpenCircuitReschedulesWithoutCalling checks that an endpoint that keeps failing is
// probed, not hammered, and that its deliveries go through once it recovers.
func TestOpenCircuitReschedulesWithoutCalling(t *testing.T) {
	t.Parallel()
	_, url := startNATS(t)
	_, js := connectJS(t, url)
	var failing atomic.Bool
	failing.Store(true)
	rcv := startReceiver(t, func(int, *http.Request) int {
		if failing.Load() {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	cfg, _ := webhookConfig(t, "wh_1", "acc_1", rcv.srv.URL, "new_contact")
	cs := startConfigServer(t, cfg)
	attempts := newAttemptReader(t, js)
	admin := freeAddr(t)
	startDispatcher(t, dispatcherEnv(url, cs.addr,
		"ADMIN_ADDR", admin,
		"CIRCUIT_FAILURES", "3",
		"CIRCUIT_OPEN_FOR", "500ms",
		"PER_ENDPOINT_CONCURRENCY", "1",
		"RETRY_SCHEDULE", "0s,100ms,100ms,100ms,100ms,100ms,100ms,100ms"))

	const events = 10
	for i := range events {
		publishEvent(t, js, "acc_1", newContact("c"+string(rune('a'+i))))
	}
	eventually(t, 60*time.Second, "circuit open and jobs rescheduled by it", func() bool {
		return metric(t, admin, "dispatcher_open_circuits") == 1 &&
			metric(t, admin, `dispatcher_deferred_total{reason="circuit_open"}`) >= events
	})
	// Every HTTP call is an attempt record; deferrals are not. Without the breaker the failing
	// endpoint would have seen up to 8 calls per delivery by now.
	calls := rcv.count()
	if calls >= events {
		t.Errorf("calls to the failing endpoint while its circuit is open: got %d, want < %d", calls, events)
	}
	if dead := metric(t, admin, "dispatcher_dead_letters_total"); dead != 0 {
		t.Errorf("dead letters while the circuit is open: got %v, want 0", dead)
	}

	failing.Store(false)
	var recs []*webhooksv1.AttemptRecord
	succeeded := func() int {
		n := 0
		for _, r := range recs {
			if r.GetOutcome() == webhooksv1.Outcome_OUTCOME_SUCCEEDED {
				n++
			}
		}
		return n
	}
	eventually(t, 60*time.Second, "every event delivered after recovery", func() bool {
		recs = attempts.poll(t)
		return succeeded() >= events
	})
	eventually(t, 30*time.Second, "circuit closed", func() bool { return metric(t, admin, "dispatcher_open_circuits") == 0 })
	if got := succeeded(); got != events {
		t.Errorf("successful attempt records: got %d, want %d", got, events)
	}
	if got := len(rcv.distinctIDs()); got != events {
		t.Errorf("distinct events at the endpoint: got %d, want %d", got, events)
	}
	real := 0
	for _, r := range recs {
		if !r.GetDeferral() {
			real++
		}
	}
	if got, want := real, rcv.count(); got != want {
		t.Errorf("attempt records (deferral corrections aside): got %d, want one per HTTP call (%d)", got, want)
	}
	if got := metric(t, admin, `dispatcher_deliveries_total{event_type="new_contact",outcome="succeeded"}`); got != events {
		t.Errorf("dispatcher_deliveries_total succeeded: got %v, want %d", got, events)
	}
	if got := metric(t, admin, "dispatcher_end_to_end_latency_seconds_count"); got != events {
		t.Errorf("end-to-end latency observations: got %v, want %d", got, events)
	}
}

// TestDeferralKeepsNextRetryTrue: while an open circuit defers a delivery's retry, the log's
// next_retry_time of the attempt that announced it moves with it (a deferral record naming that
// attempt), and the retry never happens before the time the log finally shows.
func TestDeferralKeepsNextRetryTrue(t *testing.T) {
	t.Parallel()
	_, url := startNATS(t)
	_, js := connectJS(t, url)
	var failing atomic.Bool
	failing.Store(true)
	rcv := startReceiver(t, func(int, *http.Request) int {
		if failing.Load() {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	cfg, _ := webhookConfig(t, "wh_1", "acc_1", rcv.srv.URL, "new_contact")
	cs := startConfigServer(t, cfg)
	attempts := newAttemptReader(t, js)
	startDispatcher(t, dispatcherEnv(url, cs.addr,
		"CIRCUIT_FAILURES", "2",
		"CIRCUIT_OPEN_FOR", "300ms",
		"RETRY_SCHEDULE", "0s,100ms,100ms,100ms,100ms,100ms,100ms,100ms"))
	const events = 2
	for i := range events {
		publishEvent(t, js, "acc_1", newContact("c"+string(rune('a'+i))))
	}
	// announced is, per retrying attempt, the latest next_retry_time the log would show.
	type announced struct {
		rec  *webhooksv1.AttemptRecord
		next time.Time
	}
	view := func(recs []*webhooksv1.AttemptRecord) map[string]*announced {
		out := map[string]*announced{}
		for _, r := range recs {
			if !r.GetDeferral() && r.GetOutcome() == webhooksv1.Outcome_OUTCOME_RETRYING {
				out[r.GetAttemptId()] = &announced{rec: r, next: r.GetNextRetryTime().AsTime()}
			}
		}
		for _, r := range recs {
			if a := out[r.GetAttemptId()]; r.GetDeferral() && a != nil && r.GetNextRetryTime().AsTime().After(a.next) {
				a.next = r.GetNextRetryTime().AsTime()
			}
		}
		return out
	}
	var recs []*webhooksv1.AttemptRecord
	eventually(t, 60*time.Second, "retries deferred by the open circuit and the log corrected", func() bool {
		recs = attempts.poll(t)
		moved := 0
		for _, a := range view(recs) {
			if a.next.After(a.rec.GetNextRetryTime().AsTime()) {
				moved++
			}
		}
		return moved >= events
	})
	failing.Store(false)
	eventually(t, 60*time.Second, "every event delivered after recovery", func() bool {
		recs = attempts.poll(t)
		ok := 0
		for _, r := range recs {
			if r.GetOutcome() == webhooksv1.Outcome_OUTCOME_SUCCEEDED {
				ok++
			}
		}
		return ok == events
	})
	// The attempt after each retrying one came no earlier than the log's final announcement.
	for _, a := range view(recs) {
		for _, r := range recs {
			if r.GetDeferral() || r.GetDeliveryId() != a.rec.GetDeliveryId() || r.GetAttempt() != a.rec.GetAttempt()+1 {
				continue
			}
			if at := r.GetAttemptTime().AsTime(); at.Before(a.next) {
				t.Errorf("delivery %s attempt %d at %s, before the announced %s", r.GetDeliveryId(), r.GetAttempt(),
					at.Format(time.StampMicro), a.next.Format(time.StampMicro))
			}
		}
	}
}
