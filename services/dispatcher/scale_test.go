package main

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/customertext/webhooks/libs/event"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/services/dispatcher/internal/fanout"
)

// TestTwoReplicasSplitTheWork runs two dispatchers on the same consumers: every event is
// delivered exactly once and both replicas deliver some.
func TestTwoReplicasSplitTheWork(t *testing.T) {
	t.Parallel()
	_, url := startNATS(t)
	_, js := connectJS(t, url)
	rcv := startReceiver(t, nil)
	cfg, _ := webhookConfig(t, "wh_1", "acc_1", rcv.srv.URL, "new_contact")
	cs := startConfigServer(t, cfg)
	admins := []string{freeAddr(t), freeAddr(t)}
	// One after the other: nats-server 2.15.2 has a data race between a stream update and a
	// consumer creation running at the same moment (both replicas' start-up), which -race reports.
	for _, a := range admins {
		startDispatcher(t, dispatcherEnv(url, cs.addr, "ADMIN_ADDR", a, "CONCURRENCY", "4"))
		eventually(t, 30*time.Second, "replica ready", func() bool {
			return metric(t, a, `dispatcher_index_webhooks{state="enabled"}`) == 1
		})
	}
	// Each replica counts both, so each applies half the per-account fair share.
	for _, a := range admins {
		eventually(t, 30*time.Second, "replica "+a+" hears both", func() bool { return metric(t, a, "dispatcher_replicas") == 2 })
	}
	const events = 200
	for i := range events {
		publishEvent(t, js, "acc_1", newContact("c"+strconv.Itoa(i)))
	}
	eventually(t, 120*time.Second, "every event delivered", func() bool { return len(rcv.distinctIDs()) == events })
	if n := rcv.count(); n != events {
		t.Errorf("requests: got %d, want %d (no duplicates)", n, events)
	}
	for i, a := range admins {
		n := metric(t, a, `dispatcher_deliveries_total{event_type="new_contact",outcome="succeeded"}`)
		if n <= 0 {
			t.Errorf("replica %d deliveries: got %v, want > 0", i, n)
		}
		t.Logf("replica %d delivered %v", i, n)
	}
}

// TestFanoutRerunIsDeduplicated simulates a fan-out that crashed after publishing an event's
// job and before acking the event: the re-run publishes the same job again, which JetStream
// drops as a duplicate, so the endpoint sees one request.
func TestFanoutRerunIsDeduplicated(t *testing.T) {
	t.Parallel()
	_, url := startNATS(t)
	_, js := connectJS(t, url)
	rcv := startReceiver(t, nil)
	cfg, _ := webhookConfig(t, "wh_1", "acc_1", rcv.srv.URL, "new_contact")
	cs := startConfigServer(t, cfg)

	env, err := event.New("acc_1", newContact("c1"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := env.Marshal()
	id := fanout.DeliveryID(env.EventID, "wh_1")
	job, _ := proto.Marshal(&webhooksv1.DeliveryJob{DeliveryId: id, EventId: env.EventID, EventType: env.Event,
		AccountId: "acc_1", WebhookId: "wh_1", Attempt: 1, Payload: body})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	jm := nats.NewMsg(streams.ReadySubject(fanout.DefaultLane, id))
	jm.Data = job
	if _, err := js.PublishMsg(ctx, jm, jetstream.WithMsgID(id+".1")); err != nil {
		t.Fatal(err)
	}
	em := nats.NewMsg(streams.EventSubject("acc_1", env.Event))
	em.Data = body
	if _, err := js.PublishMsg(ctx, em, jetstream.WithMsgID(env.EventID)); err != nil {
		t.Fatal(err)
	}

	startDispatcher(t, dispatcherEnv(url, cs.addr))
	var fan jetstream.Consumer
	eventually(t, 30*time.Second, "fan-out consumer created", func() bool {
		fan, err = js.Consumer(ctx, streams.Events, streams.FanoutConsumer)
		return err == nil
	})
	s, err := js.Stream(ctx, streams.Deliveries)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "event fanned out and every job settled", func() bool {
		fi, err := fan.Info(ctx)
		if err != nil || fi.NumPending != 0 || fi.NumAckPending != 0 || fi.Delivered.Stream < 1 {
			return false
		}
		si, err := s.Info(ctx)
		return err == nil && si.State.Msgs == 0 && rcv.count() >= 1
	})
	if n := rcv.count(); n != 1 {
		t.Errorf("requests: got %d, want 1", n)
	}
}
