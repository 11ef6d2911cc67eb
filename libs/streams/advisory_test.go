package streams_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/customertext/webhooks/libs/natsserver"
	"github.com/customertext/webhooks/libs/streams"
)

// TestWatchMaxDeliveries proves the advisory's subject and shape against a real server: a
// message nak'd until its consumer's MaxDeliver is reported once, with its stream sequence.
func TestWatchMaxDeliveries(t *testing.T) {
	t.Parallel()
	ns, err := natsserver.Start(natsserver.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := streams.Ensure(ctx, js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	cons, err := streams.EnsureConsumer(ctx, js, streams.Attempts, jetstream.ConsumerConfig{
		Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 2})
	if err != nil {
		t.Fatal(err)
	}
	unbounded, err := streams.EnsureConsumer(ctx, js, streams.Events, jetstream.ConsumerConfig{
		Durable: "unbounded", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	if got := unbounded.CachedInfo().Config.MaxDeliver; got != streams.MaxDeliver {
		t.Errorf("a consumer ensured without MaxDeliver: got %d, want %d", got, streams.MaxDeliver)
	}
	got := make(chan streams.MaxDeliveries, 2)
	sub, err := streams.WatchMaxDeliveries(nc, streams.Attempts, "c", "q", func(a streams.MaxDeliveries) { got <- a })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	ack, err := js.Publish(ctx, "attempts.x", []byte("poison"))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			_ = m.Nak()
		}
	}
	select {
	case a := <-got:
		if a.StreamSeq != ack.Sequence || a.Stream != streams.Attempts || a.Consumer != "c" || a.Deliveries < 2 {
			t.Errorf("advisory: got %+v, want seq %d of %s/c after 2 deliveries", a, ack.Sequence, streams.Attempts)
		}
	case <-ctx.Done():
		t.Fatal("no max-deliveries advisory")
	}
}
