package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/customertext/webhooks/libs/event"
	eventsv1 "github.com/customertext/webhooks/libs/gen/customertext/events/v1"
	"github.com/customertext/webhooks/libs/natsserver"
	"github.com/customertext/webhooks/libs/outbox"
	"github.com/customertext/webhooks/libs/pgtest"
	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/libs/streams"
)

const schema = "svc"

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

// startRelay runs a relay with cfg until ctx ends; done receives what Run returned.
func startRelay(ctx context.Context, t *testing.T, pool *pgxpool.Pool, js jetstream.JetStream, cfg outbox.RelayConfig) (relay *outbox.Relay, done <-chan error) {
	t.Helper()
	relay, err := outbox.NewRelay(pool, js, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- relay.Run(ctx) }()
	return relay, errc
}

// eventsStored returns a probe of how many messages EVENTS holds (0 while NATS is away).
func eventsStored(ctx context.Context, js jetstream.JetStream) func() uint64 {
	return func() uint64 {
		s, err := js.Stream(ctx, streams.Events)
		if err != nil {
			return 0
		}
		info, err := s.Info(ctx)
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
}

func addEvents(t *testing.T, pool *pgxpool.Pool, n int) []string {
	t.Helper()
	return addEventsWith(t, pool, n, false)
}

// addEventsWith adds n events in one transaction, with one AddMany when many is set.
func addEventsWith(t *testing.T, pool *pgxpool.Pool, n int, many bool) []string {
	t.Helper()
	var ids []string
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var batch []outbox.Event
		for range n {
			env, err := event.New("acct_1", &eventsv1.NewContact{ContactId: "c1", Source: "manual"}, time.Now())
			if err != nil {
				return err
			}
			ids = append(ids, env.EventID)
			h := nats.Header{"traceparent": {traceparent}}
			if many {
				batch = append(batch, outbox.Event{Envelope: env, Headers: h})
				continue
			}
			if err := outbox.Add(ctx, tx, schema, env, h); err != nil {
				return err
			}
		}
		return outbox.AddMany(ctx, tx, schema, batch)
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestRelayPublishesOnceAndSurvivesNATSOutage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool, err := postgres.Open(ctx, pgtest.NewDatabase(t), schema, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := outbox.Migrate(ctx, pool, schema); err != nil {
		t.Fatal(err)
	}
	if err := outbox.Migrate(ctx, pool, schema); err != nil {
		t.Fatalf("second migration run must be a no-op: %v", err)
	}

	port, store := freePort(t), t.TempDir()
	ns, err := natsserver.Start(natsserver.Options{Port: port, StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := streams.Ensure(ctx, js, streams.Config{}); err != nil {
		t.Fatal(err)
	}

	relay, done := startRelay(ctx, t, pool, js, outbox.RelayConfig{Schema: schema, PollInterval: 100 * time.Millisecond, AckTimeout: time.Second})

	streamMsgs := eventsStored(ctx, js)
	pending := func() int {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	first := addEvents(t, pool, 3)
	waitFor(t, "3 events on EVENTS", func() bool { return streamMsgs() == 3 && pending() == 0 })

	// NATS goes away: events keep being accepted and wait in the outbox.
	ns.Shutdown()
	second := addEvents(t, pool, 5)
	waitFor(t, "a failed publish attempt", func() bool { return testutil.ToFloat64(relay.FailuresForTest()) > 0 })
	if got := pending(); got != 5 {
		t.Fatalf("outbox during outage: got %d rows, want 5", got)
	}

	ns, err = natsserver.Start(natsserver.Options{Port: port, StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	waitFor(t, "8 events on EVENTS after the outage", func() bool { return streamMsgs() == 8 && pending() == 0 })

	// A relay that crashed after publishing but before deleting re-publishes: JetStream drops it.
	if _, err := pool.Exec(ctx, `INSERT INTO outbox (event_id, subject, body) VALUES ($1, $2, $3)`,
		first[0], streams.EventSubject("acct_1", event.NewContact), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `SELECT pg_notify($1, '')`, outbox.Channel(schema)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the duplicate row to be relayed", func() bool { return pending() == 0 })
	if got := streamMsgs(); got != 8 {
		t.Errorf("after re-publishing a duplicate: got %d messages, want 8", got)
	}

	// Every event arrived exactly once, with its id and trace header.
	cons, err := js.OrderedConsumer(ctx, streams.Events, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(8, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for m := range batch.Messages() {
		id := m.Headers().Get(jetstream.MsgIDHeader)
		if seen[id] {
			t.Errorf("event %s published twice", id)
		}
		seen[id] = true
		if m.Headers().Get("traceparent") == "" {
			t.Errorf("event %s lost its traceparent header", id)
		}
		if _, err := event.Parse(m.Data()); err != nil {
			t.Errorf("event %s: %v", id, err)
		}
	}
	for _, id := range append(first, second...) {
		if !seen[id] {
			t.Errorf("event %s never published", id)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("relay returned %v", err)
	}
}

// TestRelayWakesOnCommit shows the LISTEN/NOTIFY path: with polling effectively off, a committed
// event is still published.
// TestRelayWakesOnCommit adds events one by one and with AddMany: either way the commit wakes
// the relay (it never polls here), and the events reach EVENTS in order with their headers.
func TestRelayWakesOnCommit(t *testing.T) {
	for _, many := range []bool{false, true} {
		t.Run(map[bool]string{false: "Add", true: "AddMany"}[many], func(t *testing.T) { testRelayWakesOnCommit(t, many) })
	}
}

func testRelayWakesOnCommit(t *testing.T, many bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool, js := outboxAndStreams(ctx, t)
	_, done := startRelay(ctx, t, pool, js, outbox.RelayConfig{Schema: schema, PollInterval: time.Hour})
	// The first drain runs at start; wait for the listener to be up before committing.
	waitFor(t, "the relay to listen", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'`).Scan(&n)
		return n > 0
	})
	ids := addEventsWith(t, pool, 3, many)
	stored := eventsStored(ctx, js)
	waitFor(t, "3 events on EVENTS without polling", func() bool { return stored() == 3 })
	stream, err := js.Stream(ctx, streams.Events)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		m, err := stream.GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Header.Get(jetstream.MsgIDHeader); got != id {
			t.Errorf("message %d: event %s, want %s (the order they were added in)", i+1, got, id)
		}
		if got := m.Header.Get("traceparent"); got != traceparent {
			t.Errorf("message %d: traceparent %q, want %q", i+1, got, traceparent)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("relay returned %v", err)
	}
}

// TestBulkRowsDoNotHoldBackOthers writes an import's worth of bulk rows, then one event of
// another account: the relay publishes that event long before the bulk backlog is through,
// where a single FIFO would have published it last.
func TestBulkRowsDoNotHoldBackOthers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool, js := outboxAndStreams(ctx, t)

	const bulk = 5000
	addEventsWith(t, pool, bulk, true)
	other := addEvents(t, pool, 1)[0]
	rows, err := pool.Query(ctx, `SELECT bulk, count(*) FROM outbox GROUP BY bulk`)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[bool]int{}
	for rows.Next() {
		var b bool
		var n int
		if err := rows.Scan(&b, &n); err != nil {
			t.Fatal(err)
		}
		kinds[b] = n
	}
	if kinds[true] != bulk || kinds[false] != 1 {
		t.Fatalf("outbox rows by bulk: %v, want %d bulk and 1 other", kinds, bulk)
	}

	_, done := startRelay(ctx, t, pool, js, outbox.RelayConfig{Schema: schema, BatchSize: 100})
	stream, err := js.Stream(ctx, streams.Events)
	if err != nil {
		t.Fatal(err)
	}
	stored := eventsStored(ctx, js)
	waitFor(t, "the whole outbox on EVENTS", func() bool { return stored() == bulk+1 })
	var seq uint64
	for s := uint64(1); s <= bulk+1; s++ {
		msg, err := stream.GetMsg(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Header.Get(jetstream.MsgIDHeader) == other {
			seq = s
			break
		}
	}
	if seq == 0 || seq > bulk/2 {
		t.Errorf("the other event is message %d on EVENTS; want it within the first half of the %d bulk rows", seq, bulk)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("relay returned %v", err)
	}
}

// outboxAndStreams returns a pool on a fresh database with the outbox, and a JetStream context
// on a fresh nats-server with the streams; both close when the test ends.
func outboxAndStreams(ctx context.Context, t *testing.T) (*pgxpool.Pool, jetstream.JetStream) {
	t.Helper()
	pool, err := postgres.Open(ctx, pgtest.NewDatabase(t), schema, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := outbox.Migrate(ctx, pool, schema); err != nil {
		t.Fatal(err)
	}
	ns, err := natsserver.Start(natsserver.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := streams.Ensure(ctx, js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	return pool, js
}

// TestBulkRowsArePacedByTheFanoutBacklog: bulk rows stay in the outbox while the fan-out has
// MaxFanoutBacklog events waiting, and go on as soon as it catches up, marked as bulk; other rows
// are not paced and not marked.
func TestBulkRowsArePacedByTheFanoutBacklog(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool, js := outboxAndStreams(ctx, t)
	fanout, err := streams.EnsureConsumer(ctx, js, streams.Events, jetstream.ConsumerConfig{
		Durable: streams.FanoutConsumer, FilterSubject: "events.>", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	const bulk, maxBacklog = 500, 40
	addEventsWith(t, pool, bulk, true)
	relay, done := startRelay(ctx, t, pool, js, outbox.RelayConfig{Schema: schema, MaxFanoutBacklog: maxBacklog})
	stream, err := js.Stream(ctx, streams.Events)
	if err != nil {
		t.Fatal(err)
	}
	msgs := eventsStored(ctx, js)
	waitFor(t, "the relay to pace the bulk rows", func() bool { return msgs() >= maxBacklog })
	// Once the backlog is at the bound, nothing more comes until the fan-out reads.
	paced := relay.PacedForTest()
	waitFor(t, "time counted as paced", func() bool { return testutil.ToFloat64(paced) > 0.1 })
	if got := msgs(); got > maxBacklog+maxBacklog/2 {
		t.Fatalf("EVENTS holds %d bulk events while the fan-out reads nothing; want at most %d", got, maxBacklog+maxBacklog/2)
	}
	other := addEvents(t, pool, 1)[0]
	waitFor(t, "the other event, not paced", func() bool {
		m, err := stream.GetLastMsgForSubject(ctx, streams.EventSubject("acct_1", event.NewContact))
		return err == nil && m.Header.Get(jetstream.MsgIDHeader) == other
	})

	// The fan-out catches up: the rest follows.
	read := 0
	for read < bulk+1 {
		batch, err := fanout.Fetch(100, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			// Bulk events are marked, so that the dispatchers do not count their paced wait as
			// lateness; the other event is not.
			wantMark := ""
			if m.Headers().Get(jetstream.MsgIDHeader) != other {
				wantMark = "1"
			}
			if got := m.Headers().Get(streams.BulkEventHeader); got != wantMark {
				t.Errorf("event %s: %s %q, want %q", m.Headers().Get(jetstream.MsgIDHeader), streams.BulkEventHeader, got, wantMark)
			}
			if err := m.Ack(); err != nil {
				t.Fatal(err)
			}
			read++
		}
		if batch.Error() != nil && !errors.Is(batch.Error(), nats.ErrTimeout) {
			t.Fatal(batch.Error())
		}
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
	}
	if got := msgs(); got != bulk+1 {
		t.Errorf("EVENTS holds %d events in the end, want %d", got, bulk+1)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("relay returned %v", err)
	}
}

// TestRelayPublishesRowsThatCommitLate: a row whose transaction took its seq first but commits
// after later rows were relayed is behind the relay's mark; it is still published as soon as it
// commits, for plain and bulk rows alike.
func TestRelayPublishesRowsThatCommitLate(t *testing.T) {
	for _, n := range []int{1, outbox.BulkThreshold + 1} {
		t.Run(fmt.Sprintf("%d rows", n), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pool, js := outboxAndStreams(ctx, t)
			_, done := startRelay(ctx, t, pool, js, outbox.RelayConfig{Schema: schema, PollInterval: time.Hour, MaxFanoutBacklog: -1})

			late, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = late.Rollback(ctx) }()
			var lateIDs []string
			var batch []outbox.Event
			for range n {
				env, err := event.New("acct_1", &eventsv1.NewContact{ContactId: "late", Source: "manual"}, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				lateIDs = append(lateIDs, env.EventID)
				batch = append(batch, outbox.Event{Envelope: env})
			}
			if n == 1 {
				err = outbox.Add(ctx, late, schema, batch[0].Envelope, nil)
			} else {
				err = outbox.AddMany(ctx, late, schema, batch)
			}
			if err != nil {
				t.Fatal(err)
			}
			addEventsWith(t, pool, n, n > 1) // later seqs, committed first
			stream, err := js.Stream(ctx, streams.Events)
			if err != nil {
				t.Fatal(err)
			}
			msgs := eventsStored(ctx, js)
			waitFor(t, "the rows committed first", func() bool { return msgs() == uint64(n) })
			if err := late.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the rows that committed late", func() bool { return msgs() == uint64(2*n) })
			for i, id := range lateIDs {
				m, err := stream.GetMsg(ctx, uint64(n+i+1))
				if err != nil {
					t.Fatal(err)
				}
				if got := m.Header.Get(jetstream.MsgIDHeader); got != id {
					t.Errorf("message %d: event %s, want the late row %s", n+i+1, got, id)
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("relay returned %v", err)
			}
		})
	}
}
