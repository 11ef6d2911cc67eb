package main

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/customertext/webhooks/libs/streams"
)

// TestConfigChangesReachDelivery drives the index through change notifications only (the
// periodic resync is an hour away): a new webhook starts receiving, a disabled one stops, a
// deleted one is removed.
func TestConfigChangesReachDelivery(t *testing.T) {
	t.Parallel()
	_, url := startNATS(t)
	nc, js := connectJS(t, url)
	rcv1 := startReceiver(t, nil)
	rcv2 := startReceiver(t, nil)
	cfg1, _ := webhookConfig(t, "wh_1", "acc_1", rcv1.srv.URL, "new_contact")
	cs := startConfigServer(t, cfg1)
	admin := freeAddr(t)
	startDispatcher(t, dispatcherEnv(url, cs.addr, "ADMIN_ADDR", admin, "RESYNC_INTERVAL", "1h"))

	indexHolds := func(enabled, disabled float64) func() bool {
		return func() bool {
			return metric(t, admin, `dispatcher_index_webhooks{state="enabled"}`) == enabled &&
				metric(t, admin, `dispatcher_index_webhooks{state="disabled"}`) == disabled
		}
	}
	notify := func(id string) {
		if err := nc.Publish(streams.WebhookChangesPrefix+id, nil); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, "initial load", indexHolds(1, 0))

	cfg2, _ := webhookConfig(t, "wh_2", "acc_1", rcv2.srv.URL, "new_contact")
	cs.set(cfg2)
	notify("wh_2")
	eventually(t, 30*time.Second, "wh_2 added", indexHolds(2, 0))
	e1 := publishEvent(t, js, "acc_1", newContact("c1"))
	eventually(t, 30*time.Second, "e1 at both", func() bool {
		return rcv1.distinctIDs()[e1.EventID] == 1 && rcv2.distinctIDs()[e1.EventID] == 1
	})

	disabled := proto.CloneOf(cfg1)
	disabled.Enabled, disabled.Version = false, 2
	cs.set(disabled)
	notify("wh_1")
	eventually(t, 30*time.Second, "wh_1 disabled", indexHolds(1, 1))
	cs.remove("wh_2")
	notify("wh_2")
	eventually(t, 30*time.Second, "wh_2 removed", indexHolds(0, 1))

	e2 := publishEvent(t, js, "acc_1", newContact("c2"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, streams.Events, streams.FanoutConsumer)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "e2 fanned out", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.Delivered.Stream >= 2 && info.NumPending == 0 && info.NumAckPending == 0
	})
	if got := metric(t, admin, `dispatcher_events_total{result="no_match"}`); got != 1 {
		t.Errorf("events with no matching webhook: got %v, want 1 (e2)", got)
	}
	for name, rc := range map[string]*receiver{"wh_1": rcv1, "wh_2": rcv2} {
		if n := rc.distinctIDs()[e2.EventID]; n != 0 {
			t.Errorf("%s received e2 %d times, want 0", name, n)
		}
	}
}
