package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/customertext/webhooks/libs/event"
	"github.com/customertext/webhooks/libs/streams"
)

// TestDeadAndHangingEndpointsDoNotDelayHealthyOnes queues thousands of deliveries for an endpoint
// that refuses connections and one that hangs until the timeout, ahead of a healthy endpoint's
// deliveries, on a replica with little capacity. Healthy deliveries must keep completing while
// the bad ones are still pending: waiting retries and open circuits hold no consumer slots.
func TestDeadAndHangingEndpointsDoNotDelayHealthyOnes(t *testing.T) {
	t.Parallel()
	_, url := startNATS(t)
	_, js := connectJS(t, url)

	// An address nobody listens on.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "http://" + lis.Addr().String() + "/hook"
	lis.Close()

	var hung atomic.Int64
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	healthy := startReceiver(t, nil)

	cfgDown, _ := webhookConfig(t, "wh_down", "acc_bad", downURL, "new_contact")
	cfgHang, _ := webhookConfig(t, "wh_hang", "acc_bad", hang.URL, "new_contact")
	cfgOK, _ := webhookConfig(t, "wh_ok", "acc_good", healthy.srv.URL, "new_contact")
	cs := startConfigServer(t, cfgDown, cfgHang, cfgOK)
	admin := freeAddr(t)
	startDispatcher(t, dispatcherEnv(url, cs.addr,
		"ADMIN_ADDR", admin,
		"CONCURRENCY", "16",
		"PER_ENDPOINT_CONCURRENCY", "4",
		"DELIVERY_TIMEOUT", "2s",
		"ACK_WAIT", "10s",
		"CIRCUIT_OPEN_FOR", "30s",
		"RETRY_SCHEDULE", "0s,5s,5m,30m",
		// Keep every job in the default lane: this test is about endpoints, not tenants.
		"FAIR_SHARE_BURST", "100000",
	))

	const bad = 1500 // events, each to two bad webhooks
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var futures []jetstream.PubAckFuture
	for i := range bad {
		env, err := event.New("acc_bad", newContact("c"+strconv.Itoa(i)), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := env.Marshal()
		m := nats.NewMsg(streams.EventSubject("acc_bad", env.Event))
		m.Data = body
		f, err := js.PublishMsgAsync(m, jetstream.WithMsgID(env.EventID))
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatalf("publish: %v", err)
		case <-ctx.Done():
			t.Fatal("publish: no ack")
		}
	}
	s, err := js.Stream(ctx, streams.Deliveries)
	if err != nil {
		t.Fatal(err)
	}
	deliveriesInStream := func() uint64 {
		info, err := s.Info(ctx)
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
	eventually(t, 90*time.Second, "every bad delivery queued", func() bool { return deliveriesInStream() >= 2*bad })

	// The healthy account's events arrive behind the backlog, one at a time: first while the bad
	// endpoints' first attempts are queued or hanging, then once both circuits have opened
	// (which takes timed-out requests at the hanging endpoint).
	const good = 20
	deliverHealthy := func(phase string) {
		for i := range good {
			ev := publishEvent(t, js, "acc_good", newContact(phase+strconv.Itoa(i)))
			eventually(t, 60*time.Second, phase+" healthy delivery "+strconv.Itoa(i), func() bool { return healthy.distinctIDs()[ev.EventID] > 0 })
		}
	}
	deliverHealthy("early")
	eventually(t, 90*time.Second, "both bad endpoints' circuits open", func() bool {
		return metric(t, admin, "dispatcher_open_circuits") == 2
	})
	deliverHealthy("late")

	// Every bad delivery is still pending (a ready job or a schedule each; none can have finished),
	// and most have not even been attempted.
	if n := deliveriesInStream(); n < 2*bad {
		t.Errorf("DELIVERIES messages after healthy deliveries: got %d, want >= %d (bad deliveries still pending)", n, 2*bad)
	}
	if n := hung.Load(); n >= bad {
		t.Errorf("requests to the hanging endpoint: got %d, want < %d", n, bad)
	}
	if got := len(healthy.distinctIDs()); got != 2*good {
		t.Errorf("healthy deliveries: got %d, want %d", got, 2*good)
	}
	t.Logf("hanging endpoint saw %d requests while %d healthy deliveries completed", hung.Load(), 2*good)
}
