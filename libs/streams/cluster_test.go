package streams_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/customertext/webhooks/libs/natsserver"
	"github.com/customertext/webhooks/libs/streams"
)

// TestMain lets this test binary serve as a node of the clusters the tests start (see
// natsserver.RunNodeIfChild), so that a test can SIGKILL a node.
func TestMain(m *testing.M) {
	natsserver.RunNodeIfChild()
	os.Exit(m.Run())
}

// clusterJS starts a 3-node cluster, creates the platform's streams with 3 replicas, and returns a
// JetStream client connected to every node with the settings the services use.
func clusterJS(t *testing.T) (*natsserver.Cluster, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, js := startCluster(ctx, t)
	if !streams.EnsureWithRetry(ctx, js, streams.Config{Replicas: 3}, testLogger(t)) {
		t.Fatal("ensure R3 streams: gave up")
	}
	return c, js
}

// startCluster starts a 3-node cluster with no streams yet, stopped when the test ends, and a
// JetStream client connected to every node.
func startCluster(ctx context.Context, t *testing.T) (*natsserver.Cluster, jetstream.JetStream) {
	t.Helper()
	c, err := natsserver.StartCluster(ctx, natsserver.ClusterOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	nc, err := nats.Connect(c.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return c, js
}

// streamLeader waits until the stream has a leader with every replica current, and returns the
// leader's node name.
func streamLeader(ctx context.Context, t *testing.T, js jetstream.JetStream, stream string) string {
	t.Helper()
	var last string
	for {
		info, err := streamInfo(ctx, js, stream)
		if err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
			current := 0
			for _, r := range info.Cluster.Replicas {
				if r.Current && !r.Offline {
					current++
				}
			}
			if current == info.Config.Replicas-1 && current == len(info.Cluster.Replicas) {
				return info.Cluster.Leader
			}
			last = fmt.Sprintf("leader %s, %d of %d replicas current", info.Cluster.Leader, current, len(info.Cluster.Replicas))
		} else if err != nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream %s: no leader with current replicas: %s", stream, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func streamInfo(ctx context.Context, js jetstream.JetStream, stream string) (*jetstream.StreamInfo, error) {
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := js.Stream(ictx, stream)
	if err != nil {
		return nil, err
	}
	return s.Info(ictx)
}

// awaitNewLeader waits until the stream is led by a node other than old.
func awaitNewLeader(ctx context.Context, t *testing.T, js jetstream.JetStream, stream, old string) string {
	t.Helper()
	for {
		info, err := streamInfo(ctx, js, stream)
		if err == nil && info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != old {
			return info.Cluster.Leader
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream %s: still no leader other than %s", stream, old)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestClusterStreamsAreR3(t *testing.T) {
	_, js := clusterJS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, name := range []string{streams.Events, streams.Deliveries, streams.Attempts} {
		streamLeader(ctx, t, js, name)
		info, err := streamInfo(ctx, js, name)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Config.Replicas; got != 3 {
			t.Errorf("%s: got %d replicas, want 3", name, got)
		}
		if got := len(info.Cluster.Replicas); got != 2 {
			t.Errorf("%s: got %d followers, want 2", name, got)
		}
	}
}

// A retry waits as a message schedule held by the DELIVERIES leader. When that node dies, the new
// leader must fire it: otherwise every retry pending on the lost node is lost.
func TestClusterScheduleFiresAfterLeaderKill(t *testing.T) {
	c, js := clusterJS(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader := streamLeader(ctx, t, js, streams.Deliveries)

	const n = 20
	at := time.Now().Add(4 * time.Second)
	for i := range n {
		id := fmt.Sprintf("del_sched%d", i)
		msg := nats.NewMsg(streams.ScheduleSubject(id, ""))
		msg.Header.Set("Nats-Schedule", "@at "+at.UTC().Format(time.RFC3339Nano))
		msg.Header.Set("Nats-Schedule-Target", streams.ReadySubject("default", id))
		msg.Header.Set(nats.MsgIdHdr, id+".1")
		msg.Data = []byte(id)
		ack, err := js.PublishMsg(ctx, msg)
		if err != nil {
			t.Fatalf("publish schedule %d: %v", i, err)
		}
		if ack.Duplicate {
			t.Fatalf("schedule %d acked as duplicate", i)
		}
	}
	c.Node(leader).Kill()
	newLeader := awaitNewLeader(ctx, t, js, streams.Deliveries, leader)
	t.Logf("DELIVERIES leader %s killed; %s leads", leader, newLeader)

	cons, err := streams.EnsureConsumer(ctx, js, streams.Deliveries, jetstream.ConsumerConfig{
		Durable: "ready", FilterSubject: "deliveries.ready.>", AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for len(got) < n {
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			got[string(m.Data())] = true
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d scheduled messages after the leader was killed", len(got), n)
		}
	}
	if early := time.Until(at); early > 0 {
		t.Errorf("schedules fired %v before their time", early)
	}

	// The killed node comes back as a follower and catches up.
	if err := c.Node(leader).Start(); err != nil {
		t.Fatal(err)
	}
	streamLeader(ctx, t, js, streams.Deliveries)
}

// The outbox relay re-publishes after a crash under the same Nats-Msg-Id; the stream must drop
// the copy even when its leader changed in between.
func TestClusterDedupeAcrossLeaderKill(t *testing.T) {
	c, js := clusterJS(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader := streamLeader(ctx, t, js, streams.Events)

	subject := streams.EventSubject("acct_dedupe", "new_contact")
	if _, err := js.Publish(ctx, subject, []byte("one"), jetstream.WithMsgID("evt_1")); err != nil {
		t.Fatal(err)
	}
	c.Node(leader).Kill()
	awaitNewLeader(ctx, t, js, streams.Events, leader)

	ack, err := js.Publish(ctx, subject, []byte("one"), jetstream.WithMsgID("evt_1"))
	if err != nil {
		t.Fatalf("re-publish after leader loss: %v", err)
	}
	if !ack.Duplicate {
		t.Error("re-publish after leader loss: got a new message, want it dropped as a duplicate")
	}
	info, err := streamInfo(ctx, js, streams.Events)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("EVENTS holds %d messages, want 1", info.State.Msgs)
	}
}

// Consumers are created and updated through the meta leader; every replica of every service
// ensures its consumers at start, so a service must be able to start after the meta leader died.
func TestClusterConsumersAfterMetaLeaderKill(t *testing.T) {
	c, js := clusterJS(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	meta, err := c.MetaLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Node(meta).Kill()
	newMeta, err := c.MetaLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if newMeta == meta {
		t.Fatalf("meta leader still %s after it was killed", meta)
	}
	// Ensure goes through the new meta leader and the streams' new leaders; it may need a few
	// tries while they settle, which is what the services' start-up retries are for.
	start := time.Now()
	if !streams.EnsureWithRetry(ctx, js, streams.Config{Replicas: 3}, testLogger(t)) {
		t.Fatal("ensure after meta leader loss: gave up")
	}
	t.Logf("meta leader %s killed, %s leads; streams ensured after %v", meta, newMeta, time.Since(start).Round(time.Millisecond))
	cons, err := streams.EnsureConsumer(ctx, js, streams.Events, jetstream.ConsumerConfig{
		Durable: "after-meta-loss", AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(ctx, t, js, streams.EventSubject("acct_meta", "new_contact"), "x")
	var m jetstream.Msg
	for {
		// A new consumer answers once its own leader is elected: until then, no responders.
		if m, err = cons.Next(jetstream.FetchMaxWait(2 * time.Second)); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("consume after meta leader loss: %v", err)
		}
	}
	if string(m.Data()) != "x" {
		t.Errorf("got %q, want %q", m.Data(), "x")
	}
}

// A node down for a while misses writes and acks; back, it must catch up so that it can lead
// again without resurrecting acked work-queue messages or losing new ones.
func TestClusterNodeDownThenBack(t *testing.T) {
	c, js := clusterJS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	leader := streamLeader(ctx, t, js, streams.Deliveries)
	var follower *natsserver.Node
	for _, n := range c.Nodes() {
		if n.Name != leader {
			follower = n
			break
		}
	}
	// The workers' consumer exists before the node dies, as it does in production.
	cons, err := streams.EnsureConsumer(ctx, js, streams.Deliveries, jetstream.ConsumerConfig{
		Durable: "ready", FilterSubject: "deliveries.ready.>", AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	follower.Kill()
	for i := range 100 {
		id := fmt.Sprintf("del_%d", i)
		publish(ctx, t, js, streams.ReadySubject("default", id), id)
	}
	acked := 0
	for acked < 60 {
		batch, err := cons.Fetch(60-acked, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
			acked++
		}
	}
	if err := follower.Start(); err != nil {
		t.Fatal(err)
	}
	streamLeader(ctx, t, js, streams.Deliveries) // every replica current again

	// Make the returning node lead: what it serves must be the 40 unacked jobs, no more.
	for {
		l := streamLeader(ctx, t, js, streams.Deliveries)
		if l == follower.Name {
			break
		}
		if err := stepDown(ctx, js, streams.Deliveries); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Logf("step down: %v", err)
		}
		if ctx.Err() != nil {
			t.Fatal("the returning node never led DELIVERIES")
		}
	}
	info, err := streamInfo(ctx, js, streams.Deliveries)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 40 {
		t.Errorf("DELIVERIES led by the returning node holds %d jobs, want 40", info.State.Msgs)
	}
}

// publish publishes body as the services do in a cluster: each try bounded, retried under the same
// Nats-Msg-Id until acknowledged. A request written to a node's connection just before that node
// was killed is never answered, and jetstream's Publish retries only "no responders".
func publish(ctx context.Context, t *testing.T, js jetstream.JetStream, subject, body string) {
	t.Helper()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.Publish(pctx, subject, []byte(body), jetstream.WithMsgID(subject))
		cancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("publish %s: %v", subject, err)
		}
	}
}

// testLogger writes a component's logs into the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// stepDown asks the stream's leader to hand over to another replica.
func stepDown(ctx context.Context, js jetstream.JetStream, stream string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, nil)
	return err
}

// Going from a single server's R1 to R3 on a running system is a configuration update: the
// messages stay and the stream gains replicas.
func TestClusterScaleR1ToR3(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, js := startCluster(ctx, t)
	if !streams.EnsureWithRetry(ctx, js, streams.Config{Replicas: 1}, testLogger(t)) {
		t.Fatal("ensure R1 streams: gave up")
	}
	for i := range 50 {
		if _, err := js.Publish(ctx, streams.EventSubject("acct_r1", "new_contact"), []byte("e"), jetstream.WithMsgID(fmt.Sprintf("evt_%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	// A service that does not own the setting (Replicas 0) keeps R1.
	if !streams.EnsureWithRetry(ctx, js, streams.Config{}, testLogger(t)) {
		t.Fatal("ensure with no replica setting: gave up")
	}
	if info, err := streamInfo(ctx, js, streams.Events); err != nil || info.Config.Replicas != 1 {
		t.Fatalf("after Ensure with no replica setting: %+v, %v; want R1 kept", info, err)
	}
	if !streams.EnsureWithRetry(ctx, js, streams.Config{Replicas: 3}, testLogger(t)) {
		t.Fatal("scale to R3: gave up")
	}
	streamLeader(ctx, t, js, streams.Events)
	info, err := streamInfo(ctx, js, streams.Events)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || len(info.Cluster.Replicas) != 2 {
		t.Errorf("after scaling: %d replicas configured, %d followers; want 3 and 2", info.Config.Replicas, len(info.Cluster.Replicas))
	}
	if info.State.Msgs != 50 {
		t.Errorf("after scaling: %d events, want the 50 kept", info.State.Msgs)
	}
}

// In a cluster every service ensures the streams at start and only the dispatcher owns the
// replica setting, so the dispatcher may scale a stream that another service just created as R1
// and create its consumers right after. Found by `make dev NATS_NODES=3`: the consumer creation
// failed with "insufficient resources" while the new replicas were being placed.
func TestClusterConsumerRightAfterScaleUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, js := startCluster(ctx, t)
	if !streams.EnsureWithRetry(ctx, js, streams.Config{}, testLogger(t)) {
		t.Fatal("ensure R1 streams: gave up")
	}
	if !streams.EnsureWithRetry(ctx, js, streams.Config{Replicas: 3}, testLogger(t)) {
		t.Fatal("scale to R3: gave up")
	}
	for _, stream := range []string{streams.Events, streams.Deliveries, streams.Attempts} {
		if _, err := streams.EnsureConsumer(ctx, js, stream, jetstream.ConsumerConfig{
			Durable: "right-after", AckPolicy: jetstream.AckExplicitPolicy,
		}); err != nil {
			t.Errorf("consumer on %s right after scaling to R3: %v", stream, err)
		}
	}
}
