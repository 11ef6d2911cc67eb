package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/streams"
)

// TestWebhookChangesApplyToPendingRetries: the worker reads the webhook at attempt time, so a
// retry of a webhook disabled meanwhile is dead-lettered without a call (redeliverable later),
// and one of a deleted webhook is dropped without a record.
func TestWebhookChangesApplyToPendingRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		change     func(cs *configServer, cfg *webhooksv1.WebhookConfig)
		wantSecond bool // a record for attempt 2
	}{
		{"disabled", func(cs *configServer, cfg *webhooksv1.WebhookConfig) {
			d := proto.CloneOf(cfg)
			d.Enabled, d.Version = false, 2
			cs.set(d)
		}, true},
		{"deleted", func(cs *configServer, cfg *webhooksv1.WebhookConfig) { cs.remove(cfg.GetId()) }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, url := startNATS(t)
			nc, js := connectJS(t, url)
			rcv := startReceiver(t, func(int, *http.Request) int { return http.StatusInternalServerError })
			cfg, _ := webhookConfig(t, "wh_1", "acc_1", rcv.srv.URL, "new_contact")
			cs := startConfigServer(t, cfg)
			attempts := newAttemptReader(t, js)
			admin := freeAddr(t)
			startDispatcher(t, dispatcherEnv(url, cs.addr, "ADMIN_ADDR", admin, "RESYNC_INTERVAL", "1h",
				"RETRY_SCHEDULE", "0s,3s,3s"))
			publishEvent(t, js, "acc_1", newContact("c1"))
			var recs []*webhooksv1.AttemptRecord
			eventually(t, 30*time.Second, "first attempt recorded", func() bool {
				recs = attempts.poll(t)
				return len(recs) >= 1
			})
			tc.change(cs, cfg)
			if err := nc.Publish(streams.WebhookChangesPrefix+"wh_1", nil); err != nil {
				t.Fatal(err)
			}
			if tc.wantSecond {
				eventually(t, 30*time.Second, "second record", func() bool {
					recs = attempts.poll(t)
					return len(recs) >= 2
				})
				r := byAttempt(recs)[1]
				if r.GetOutcome() != webhooksv1.Outcome_OUTCOME_DEAD_LETTERED || !strings.Contains(r.GetError(), "disabled") || len(r.GetPayload()) == 0 {
					t.Errorf("record of the retry: got outcome %v error %q payload %d bytes, want DEAD_LETTERED naming disabled with the payload",
						r.GetOutcome(), r.GetError(), len(r.GetPayload()))
				}
			} else {
				eventually(t, 30*time.Second, "retry dropped", func() bool {
					return metric(t, admin, `dispatcher_deliveries_total{event_type="new_contact",outcome="dropped"}`) == 1
				})
				if recs = attempts.poll(t); len(recs) != 1 {
					t.Errorf("records: got %d, want 1 (nothing for the dropped retry)", len(recs))
				}
			}
			if n := rcv.count(); n != 1 {
				t.Errorf("requests: got %d, want 1 (no call after the change)", n)
			}
		})
	}
}

func TestSSRFGuardRefusesLoopbackWithoutAllowList(t *testing.T) {
	t.Parallel()
	_, url := startNATS(t)
	_, js := connectJS(t, url)
	rcv := startReceiver(t, nil)
	cfg, _ := webhookConfig(t, "wh_1", "acc_1", rcv.srv.URL, "new_contact")
	cs := startConfigServer(t, cfg)
	attempts := newAttemptReader(t, js)
	startDispatcher(t, dispatcherEnv(url, cs.addr, "SSRF_ALLOW", "", "RETRY_SCHEDULE", "0s"))
	publishEvent(t, js, "acc_1", newContact("c1"))
	var recs []*webhooksv1.AttemptRecord
	eventually(t, 30*time.Second, "attempt recorded", func() bool {
		recs = attempts.poll(t)
		return len(recs) >= 1
	})
	r := recs[0]
	if r.GetOutcome() != webhooksv1.Outcome_OUTCOME_DEAD_LETTERED || !strings.Contains(r.GetError(), "SSRF") {
		t.Errorf("record: got outcome %v error %q, want DEAD_LETTERED refused by the SSRF guard", r.GetOutcome(), r.GetError())
	}
	if n := rcv.count(); n != 0 {
		t.Errorf("requests reaching loopback: got %d, want 0", n)
	}
}

// TestTraceContextReachesOnlyEndpointsThatChoseIt: one event, two webhooks; the one with
// send_trace_context gets the event's trace (traceparent, tracestate), the other gets neither.
func TestTraceContextReachesOnlyEndpointsThatChoseIt(t *testing.T) {
	t.Parallel()
	// libs/telemetry writes the canonical "Traceparent"; other publishers may write lower case.
	for _, key := range []string{"Traceparent", "traceparent"} {
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			_, url := startNATS(t)
			_, js := connectJS(t, url)
			rcvOn, rcvOff := startReceiver(t, nil), startReceiver(t, nil)
			on, _ := webhookConfig(t, "wh_on", "acc_1", rcvOn.srv.URL, "new_contact")
			on.SendTraceContext = true
			off, _ := webhookConfig(t, "wh_off", "acc_1", rcvOff.srv.URL, "new_contact")
			cs := startConfigServer(t, on, off)
			attempts := newAttemptReader(t, js)
			startDispatcher(t, dispatcherEnv(url, cs.addr))
			const traceID = "0af7651916cd43dd8448eb211c80319c"
			hdr := nats.Header{key: []string{"00-" + traceID + "-b7ad6b7169203331-01"}, "tracestate": []string{"ct=internal"}}
			publishEventWith(t, js, "acc_1", newContact("c1"), hdr)
			eventually(t, 30*time.Second, "both deliveries", func() bool { return rcvOn.count() == 1 && rcvOff.count() == 1 })

			gotOn := rcvOn.requests()[0].Header
			if got := gotOn.Get("traceparent"); !strings.HasPrefix(got, "00-"+traceID+"-") {
				t.Errorf("chosen: traceparent: got %q, want the event's trace %s", got, traceID)
			}
			if got := gotOn.Get("tracestate"); got != "ct=internal" {
				t.Errorf("chosen: tracestate: got %q, want %q", got, "ct=internal")
			}
			gotOff := rcvOff.requests()[0].Header
			for _, h := range []string{"traceparent", "tracestate"} {
				if v, ok := gotOff[http.CanonicalHeaderKey(h)]; ok {
					t.Errorf("not chosen: %s: got %q, want no such header", h, v)
				}
			}

			// The delivery log shows what was sent.
			var recs []*webhooksv1.AttemptRecord
			eventually(t, 30*time.Second, "two attempt records", func() bool {
				recs = attempts.poll(t)
				return len(recs) >= 2
			})
			for _, r := range recs {
				_, sent := r.GetRequestHeaders()["traceparent"]
				if want := r.GetWebhookId() == "wh_on"; sent != want {
					t.Errorf("%s: traceparent in recorded request headers: got %v, want %v", r.GetWebhookId(), sent, want)
				}
			}
		})
	}
}
