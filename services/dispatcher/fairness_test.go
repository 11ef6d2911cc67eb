package main

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/services/dispatcher/internal/worker"
)

// TestBurstFromOneAccountDoesNotQueueOthers publishes a burst from one account (far over its
// fair share) and then a trickle from two others: the trickle is delivered while most of the
// burst is still waiting in the bulk lane.
func TestBurstFromOneAccountDoesNotQueueOthers(t *testing.T) {
	t.Parallel()
	_, url := startNATS(t)
	_, js := connectJS(t, url)

	var burstSeen atomic.Int64
	slow := func(int, *http.Request) int {
		burstSeen.Add(1)
		time.Sleep(5 * time.Millisecond)
		return http.StatusOK
	}
	var cfgs []*webhooksv1.WebhookConfig
	// Four endpoints so the per-endpoint cap is not what holds the burst back.
	for i := range 4 {
		rc := startReceiver(t, slow)
		c, _ := webhookConfig(t, "wh_burst"+strconv.Itoa(i), "acc_burst", rc.srv.URL, "new_contact")
		cfgs = append(cfgs, c)
	}
	small := startReceiver(t, nil)
	for _, acc := range []string{"acc_small1", "acc_small2"} {
		c, _ := webhookConfig(t, "wh_"+acc, acc, small.srv.URL, "new_contact")
		cfgs = append(cfgs, c)
	}
	cs := startConfigServer(t, cfgs...)
	admin := freeAddr(t)
	startDispatcher(t, dispatcherEnv(url, cs.addr,
		"ADMIN_ADDR", admin,
		"CONCURRENCY", "8",
		"PER_ENDPOINT_CONCURRENCY", "8",
		"FAIR_SHARE_RATE", "10",
		"FAIR_SHARE_BURST", "20"))

	const burst = 300 // events, four jobs each
	for i := range burst {
		publishEvent(t, js, "acc_burst", newContact("b"+strconv.Itoa(i)))
	}
	eventually(t, 60*time.Second, "the burst fanned out, mostly to the bulk lane", func() bool {
		return metric(t, admin, `dispatcher_jobs_created_total{lane="bulk"}`) >= 4*burst-100
	})

	for i := range 10 {
		acc := "acc_small" + strconv.Itoa(1+i%2)
		ev := publishEvent(t, js, acc, newContact("s"+strconv.Itoa(i)))
		eventually(t, 60*time.Second, "trickle delivery "+strconv.Itoa(i), func() bool { return small.distinctIDs()[ev.EventID] == 1 })
	}
	seen := burstSeen.Load()
	if seen >= 4*burst {
		t.Errorf("burst requests when the trickle was done: got %d, want < %d (burst still queued)", seen, 4*burst)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bulk, err := js.Consumer(ctx, streams.Deliveries, streams.DeliveryBulkConsumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := bulk.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("trickle done with %d of %d burst requests made and %d bulk jobs pending", seen, 4*burst, info.NumPending)
	eventually(t, 120*time.Second, "the whole burst delivered in the end", func() bool { return burstSeen.Load() >= 4*burst })
}

// TestBulkLaneCannotTakeTheDefaultLanesSlots fills every bulk-lane slot with deliveries to
// endpoints that do not answer: the other accounts' deliveries still go out at once, because the
// lanes share no worker slots.
func TestBulkLaneCannotTakeTheDefaultLanesSlots(t *testing.T) {
	t.Parallel()
	_, url := startNATS(t)
	_, js := connectJS(t, url)

	unblock := make(chan struct{})
	var hanging atomic.Int64
	hang := func(_ int, r *http.Request) int {
		hanging.Add(1)
		select {
		case <-unblock:
		case <-r.Context().Done():
		}
		return http.StatusOK
	}
	var cfgs []*webhooksv1.WebhookConfig
	for i := range 4 {
		rc := startReceiver(t, hang)
		c, _ := webhookConfig(t, "wh_burst"+strconv.Itoa(i), "acc_burst", rc.srv.URL, "new_contact")
		cfgs = append(cfgs, c)
	}
	t.Cleanup(func() { close(unblock) }) // runs before the receivers close
	small := startReceiver(t, nil)
	c, _ := webhookConfig(t, "wh_small", "acc_small", small.srv.URL, "new_contact")
	cfgs = append(cfgs, c)
	cs := startConfigServer(t, cfgs...)
	admin := freeAddr(t)
	startDispatcher(t, dispatcherEnv(url, cs.addr,
		"ADMIN_ADDR", admin,
		"CONCURRENCY", "8", // 4 of them held by the burst's first event, within its allowance
		"BULK_CONCURRENCY", "8",
		// This test is about slots, not the throttle (unit-tested): keep it from cutting on a
		// slow machine.
		"BULK_LATENCY_TARGET", "1h",
		"PER_ENDPOINT_CONCURRENCY", "8",
		"DELIVERY_TIMEOUT", "25s",
		"FAIR_SHARE_RATE", "1",
		"FAIR_SHARE_BURST", "4"))

	for i := range 50 {
		publishEvent(t, js, "acc_burst", newContact("b"+strconv.Itoa(i)))
	}
	eventually(t, 30*time.Second, "every bulk-lane slot held by a hanging delivery", func() bool {
		return hanging.Load() >= 4+8 && metric(t, admin, `dispatcher_jobs_created_total{lane="bulk"}`) > 0
	})
	if got := metric(t, admin, "dispatcher_bulk_lane_limit"); got != 8 {
		t.Errorf("dispatcher_bulk_lane_limit: got %v, want 8 (BULK_CONCURRENCY; the throttle never cuts with this target)", got)
	}
	for i := range 4 { // within acc_small's allowance of 4
		ev := publishEvent(t, js, "acc_small", newContact("s"+strconv.Itoa(i)))
		eventually(t, 10*time.Second, "delivery "+strconv.Itoa(i)+" of the other account", func() bool { return small.distinctIDs()[ev.EventID] == 1 })
	}
	if got := hanging.Load(); got > 4+8 {
		t.Errorf("hanging requests: got %d, want at most 12 (4 default-lane jobs within the burst allowance and 8 bulk slots)", got)
	}
}

// TestConsumersMigrateFromTheSingleLaneFilter checks that a delivery consumer created with the
// older deliveries.ready.> filter is narrowed to the default lane, so the bulk lane's consumer
// can exist beside it on the work queue.
// TestBulkLaneYieldsToLateEvents: API events that reach the default lane long after they
// occurred cut the bulk lane's limit down to its floor; events a relay marks as bulk writes, just
// as old, do not (their wait in the outbox is pacing, not lateness).
func TestBulkLaneYieldsToLateEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		header  nats.Header
		wantCut bool
	}{
		{"api events", nil, true},
		{"bulk writes", nats.Header{streams.BulkEventHeader: {"1"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, url := startNATS(t)
			_, js := connectJS(t, url)
			rc := startReceiver(t, nil)
			cfg, _ := webhookConfig(t, "wh_late", "acc_late", rc.srv.URL, "new_contact")
			cs := startConfigServer(t, cfg)
			admin := freeAddr(t)
			startDispatcher(t, dispatcherEnv(url, cs.addr,
				"ADMIN_ADDR", admin,
				"BULK_CONCURRENCY", "16",
				"BULK_MIN_CONCURRENCY", "2",
				"BULK_LATENCY_TARGET", "50ms",
				"FAIR_SHARE_RATE", "100000", // every job in the default lane
				"FAIR_SHARE_BURST", "100000"))
			limit := func() float64 { return metric(t, admin, "dispatcher_bulk_lane_limit") }
			eventually(t, 30*time.Second, "the dispatcher up with the bulk lane at its maximum", func() bool { return limit() == 16 })

			// Events that occurred a minute ago, one every 10 ms, for 3 s (the throttle adjusts
			// every 250 ms).
			lowest := limit()
			occurred := time.Now().Add(-time.Minute)
			sent := 0
			for end := time.Now().Add(3 * time.Second); time.Now().Before(end); sent++ {
				publishEventAt(t, js, "acc_late", newContact("c"+strconv.Itoa(sent)), tc.header, occurred)
				lowest = min(lowest, limit())
				time.Sleep(10 * time.Millisecond)
			}
			eventually(t, 30*time.Second, "every event delivered", func() bool { return rc.count() >= sent })
			lowest = min(lowest, limit())
			switch {
			case tc.wantCut && lowest != 2:
				t.Errorf("lowest bulk-lane limit while late events flowed: got %v, want 2 (BULK_MIN_CONCURRENCY)", lowest)
			case !tc.wantCut && lowest != 16:
				t.Errorf("lowest bulk-lane limit while bulk writes flowed: got %v, want 16 (never cut)", lowest)
			}
		})
	}
}

func TestConsumersMigrateFromTheSingleLaneFilter(t *testing.T) {
	t.Parallel()
	_, url := startNATS(t)
	_, js := connectJS(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := streams.EnsureConsumer(ctx, js, streams.Deliveries, jetstream.ConsumerConfig{
		Durable: streams.DeliveryConsumer, FilterSubject: "deliveries.ready.>", AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfig(nil, func(k string) string { return map[string]string{"SERVICE_TOKEN": "x"}[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, lanes, err := ensureConsumers(ctx, js, cfg, worker.NewThrottle(worker.ThrottleConfig{}, nil))
	if err != nil {
		t.Fatalf("ensure consumers over the old one: %v", err)
	}
	want := []string{"deliveries.ready.default.>", "deliveries.ready.bulk.>"}
	for i, l := range lanes {
		info, err := l.Consumer.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.FilterSubject != want[i] {
			t.Errorf("consumer %s filter: got %s, want %s", info.Name, info.Config.FilterSubject, want[i])
		}
	}
}
