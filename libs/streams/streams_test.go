package streams_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/customertext/webhooks/libs/natsserver"
	"github.com/customertext/webhooks/libs/streams"
)

func TestEnsureIsIdempotentAndConcurrent(t *testing.T) {
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

	// Every replica of every service runs Ensure at start-up, possibly at the same moment.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- streams.Ensure(ctx, js, streams.Config{})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Ensure: %v", err)
		}
	}
	for _, sc := range streams.StreamConfigs(streams.Config{}) {
		s, err := js.Stream(ctx, sc.Name)
		if err != nil {
			t.Fatalf("stream %s: %v", sc.Name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Storage != jetstream.FileStorage {
			t.Errorf("%s: got storage %v, want file", sc.Name, info.Config.Storage)
		}
	}
	d, err := js.Stream(ctx, streams.Deliveries)
	if err != nil {
		t.Fatal(err)
	}
	info, err := d.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Config.AllowMsgSchedules || info.Config.Retention != jetstream.WorkQueuePolicy || info.Config.MaxAge != 0 {
		t.Errorf("DELIVERIES: got schedules=%v retention=%v max-age=%s, want schedules on a work queue without max age",
			info.Config.AllowMsgSchedules, info.Config.Retention, info.Config.MaxAge)
	}

	// A changed declaration is applied to the existing stream.
	changed := streams.Config{EventsMaxAge: time.Hour}
	if err := streams.Ensure(ctx, js, changed); err != nil {
		t.Fatal(err)
	}
	ev, err := js.Stream(ctx, streams.Events)
	if err != nil {
		t.Fatal(err)
	}
	evInfo, err := ev.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if evInfo.Config.MaxAge != time.Hour {
		t.Errorf("after changing EventsMaxAge: got %v, want 1h", evInfo.Config.MaxAge)
	}

	cc := jetstream.ConsumerConfig{Durable: "probe", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "events.>"}
	if _, err := streams.EnsureConsumer(ctx, js, streams.Events, cc); err != nil {
		t.Fatal(err)
	}
	if _, err := streams.EnsureConsumer(ctx, js, streams.Events, cc); err != nil {
		t.Errorf("second EnsureConsumer: %v", err)
	}
	if _, err := streams.EnsureConsumer(ctx, js, streams.Events, jetstream.ConsumerConfig{}); err == nil {
		t.Error("EnsureConsumer without a durable name: got nil error")
	}
}

func TestSubjects(t *testing.T) {
	t.Parallel()
	subj := streams.EventSubject("acct_1", "new_contact")
	acct, typ, err := streams.ParseEventSubject(subj)
	if err != nil || acct != "acct_1" || typ != "new_contact" {
		t.Errorf("ParseEventSubject(%q): got %q %q %v", subj, acct, typ, err)
	}
	for _, bad := range []string{"", "events", "events.a", "events..x", "other.a.b", "events.a.b.c"} {
		if _, _, err := streams.ParseEventSubject(bad); err == nil {
			t.Errorf("ParseEventSubject(%q): got nil error", bad)
		}
	}
}

// TestScheduleFiresOnWorkQueue proves the retry mechanism the dispatcher relies on: a one-shot
// schedule published on a unique schedule subject fires onto a ready subject, while a consumer
// filtered to ready subjects holds no ack-pending slot for it in the meantime.
func TestScheduleFiresOnWorkQueue(t *testing.T) {
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
	cons, err := streams.EnsureConsumer(ctx, js, streams.Deliveries, jetstream.ConsumerConfig{
		Durable: "workers", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "deliveries.ready.>", MaxAckPending: 1})
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(streams.ScheduleSubject("d1", ""))
	msg.Data = []byte("job")
	msg.Header.Set("Nats-Schedule", "@at "+time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano))
	msg.Header.Set("Nats-Schedule-Target", streams.ReadySubject("default", "d1"))
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID("d1.2")); err != nil {
		t.Fatal(err)
	}
	// With MaxAckPending 1, a ready job is still consumable while the schedule waits.
	if _, err := js.Publish(ctx, streams.ReadySubject("default", "d0"), []byte("now")); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for len(got) < 2 {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			got[m.Subject()] = string(m.Data())
			if err := m.Ack(); err != nil {
				t.Fatal(err)
			}
		}
		if b.Error() != nil {
			t.Fatal(b.Error())
		}
		if ctx.Err() != nil {
			t.Fatalf("got %v before the deadline, want both jobs", got)
		}
	}
	if got[streams.ReadySubject("default", "d0")] != "now" || got[streams.ReadySubject("default", "d1")] != "job" {
		t.Errorf("got %v, want the immediate job and the fired schedule", got)
	}
}
