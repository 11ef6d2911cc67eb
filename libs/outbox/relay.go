package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/textproto"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/libs/telemetry"
)

// RelayConfig tunes a Relay; zero values take the defaults.
type RelayConfig struct {
	// Schema whose outbox table the relay drains.
	Schema string
	// BatchSize rows are published per round trip (default 256).
	BatchSize int
	// PollInterval bounds how long a row waits when a notification was missed (default 1 s).
	PollInterval time.Duration
	// AckTimeout bounds the wait for JetStream's acknowledgements of one batch (default 10 s).
	AckTimeout time.Duration
	// MaxFanoutBacklog paces bulk rows: they are published only while fewer events than this
	// wait for the dispatchers' fan-out (default 100; negative: never paced). A burst then waits
	// in its own outbox instead of in the queue every account's events share.
	MaxFanoutBacklog int
	// Tracing, when set, records one "publish" span per event (messaging conventions), a child of
	// the trace the producer stored with the row, and sends the span's context on with the
	// message; the fan-out continues from it.
	Tracing *telemetry.Tracing
}

// Relay publishes outbox rows to JetStream. Several replicas may run against the same table:
// each batch is locked with FOR UPDATE SKIP LOCKED. Bulk rows and the others are drained by two
// loops side by side.
type Relay struct {
	pool   *pgxpool.Pool
	js     jetstream.JetStream
	logger *slog.Logger
	cfg    RelayConfig

	published prometheus.Counter
	failures  prometheus.Counter
	pending   prometheus.Gauge
	oldest    prometheus.Gauge
	paced     prometheus.Counter

	fanout jetstream.Consumer // looked up when first needed
}

// NewRelay builds a relay and registers its metrics (outbox_*, labelled by schema).
func NewRelay(pool *pgxpool.Pool, js jetstream.JetStream, logger *slog.Logger, reg prometheus.Registerer, cfg RelayConfig) (*Relay, error) {
	if cfg.Schema == "" {
		return nil, errors.New("new relay: schema is required")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 256
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 10 * time.Second
	}
	if cfg.MaxFanoutBacklog == 0 {
		cfg.MaxFanoutBacklog = 100
	}
	labels := prometheus.Labels{"schema": cfg.Schema}
	r := &Relay{
		pool: pool, js: js, logger: logger.With("component", "outbox_relay"), cfg: cfg,
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "outbox_published_total",
			Help: "Events published from the outbox to JetStream.", ConstLabels: labels}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "outbox_publish_failures_total",
			Help: "Outbox batches that could not be published and will be retried.", ConstLabels: labels}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "outbox_pending",
			Help: "Events waiting in the outbox.", ConstLabels: labels}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{Name: "outbox_oldest_age_seconds",
			Help: "Age of the oldest event waiting in the outbox (0 when empty).", ConstLabels: labels}),
		paced: prometheus.NewCounter(prometheus.CounterOpts{Name: "outbox_bulk_paced_seconds_total",
			Help: "Time bulk rows waited because the dispatchers' fan-out had a backlog.", ConstLabels: labels}),
	}
	for _, c := range []prometheus.Collector{r.published, r.failures, r.pending, r.oldest, r.paced} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register outbox metrics: %w", err)
		}
	}
	return r, nil
}

// Run drains the outbox until ctx ends: at once when a transaction adds a row (LISTEN/NOTIFY),
// and every PollInterval regardless, with a growing pause while JetStream is unreachable. Bulk
// rows (see BulkThreshold) are drained by a loop of their own, so an import's backlog never
// stands in front of the other rows: each loop keeps its rows' order.
func (r *Relay) Run(ctx context.Context) error {
	wakes := []chan struct{}{make(chan struct{}, 1), make(chan struct{}, 1)}
	listenCtx, stopListen := context.WithCancel(ctx)
	defer stopListen()
	listenDone := make(chan struct{})
	go func() {
		defer close(listenDone)
		r.listen(listenCtx, wakes)
	}()
	defer func() { stopListen(); <-listenDone }()

	bulkDone, statsDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(bulkDone)
		r.loop(ctx, true, wakes[1])
	}()
	go func() {
		defer close(statsDone)
		r.stats(ctx)
	}()
	r.loop(ctx, false, wakes[0])
	<-bulkDone
	<-statsDone
	return nil
}

// loop drains the bulk rows or the others until ctx ends.
//
// The outbox is a queue table: rows are deleted seconds after they were inserted, and their
// dead index entries stay at the low end of the seq index until a vacuum. A batch that looked
// from the lowest seq would step over every one of them (100,000 after an import, each batch),
// so while it finds rows a loop looks only after the last seq it published. A row can commit
// after rows with higher seqs (its transaction took its seq first), so the loop looks from the
// start again whenever nothing is found after its mark, and at least once a second.
func (r *Relay) loop(ctx context.Context, bulk bool, wake <-chan struct{}) {
	backoff := time.Duration(0)
	busy := false // the last batch found rows: pace before the next one
	var after int64
	fromStart := time.Now()
	for {
		if bulk && busy && !r.pace(ctx) {
			return
		}
		n, last, err := r.drain(ctx, bulk, after)
		busy = n > 0
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.failures.Inc()
			after = 0
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
			r.logger.Warn("outbox publish failed; rows stay and will be retried", "error", err, "bulk", bulk, "retry_in", backoff)
		default:
			backoff = 0
			if n > 0 {
				after = last
				if time.Since(fromStart) > time.Second {
					after, fromStart = 0, time.Now()
				}
				continue // more may be waiting
			}
			if after > 0 {
				after, fromStart = 0, time.Now()
				continue // rows that committed late, behind the mark
			}
		}
		wait, wakeC := r.cfg.PollInterval, wake
		if backoff > 0 {
			wait, wakeC = backoff, nil // a notification must not cut a back-off short
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-wakeC:
		case <-t.C:
		}
		t.Stop()
	}
}

// pace waits while the fan-out has MaxFanoutBacklog or more events waiting; it returns false
// when ctx ended. Without a fan-out consumer (no dispatcher yet) nothing is paced.
func (r *Relay) pace(ctx context.Context) bool {
	if r.cfg.MaxFanoutBacklog < 0 {
		return true
	}
	for {
		if r.fanout == nil {
			c, err := r.js.Consumer(ctx, streams.Events, streams.FanoutConsumer)
			if err != nil {
				return ctx.Err() == nil
			}
			r.fanout = c
		}
		info, err := r.fanout.Info(ctx)
		if err != nil {
			r.fanout = nil // deleted, or NATS away: drain will find out and back off
			return ctx.Err() == nil
		}
		if info.NumPending+uint64(info.NumAckPending) < uint64(r.cfg.MaxFanoutBacklog) {
			return true
		}
		start := time.Now()
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
		r.paced.Add(time.Since(start).Seconds())
	}
}

// listen forwards notifications to every loop's wake channel until ctx ends, reconnecting after
// errors.
func (r *Relay) listen(ctx context.Context, wakes []chan struct{}) {
	for ctx.Err() == nil {
		err := func() error {
			conn, err := r.pool.Acquire(ctx)
			if err != nil {
				return fmt.Errorf("acquire: %w", err)
			}
			defer conn.Release()
			if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{Channel(r.cfg.Schema)}.Sanitize()); err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			defer func() {
				// The connection goes back to the pool: stop listening on it.
				uctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_, _ = conn.Exec(uctx, "UNLISTEN *")
			}()
			for {
				if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
					return fmt.Errorf("wait for notification: %w", err)
				}
				for _, wake := range wakes {
					select {
					case wake <- struct{}{}:
					default:
					}
				}
			}
		}()
		if ctx.Err() != nil {
			return
		}
		r.logger.Warn("outbox listener stopped; polling until it reconnects", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

type row struct {
	seq     int64
	eventID string
	subject string
	body    []byte
	headers []byte
}

// drain publishes one batch of bulk rows, or of the others, and returns how many rows it
// published. A batch of bulk rows is at most MaxFanoutBacklog/2, so that pacing keeps the
// fan-out's backlog near its bound.
func (r *Relay) drain(ctx context.Context, bulk bool, after int64) (int, int64, error) {
	limit := r.cfg.BatchSize
	if bulk && r.cfg.MaxFanoutBacklog > 0 {
		limit = max(1, min(limit, r.cfg.MaxFanoutBacklog/2))
	}
	// Literal conditions, so that each query is planned on its partial index.
	query := `SELECT seq, event_id, subject, body, headers FROM outbox WHERE NOT bulk AND seq > $2
		ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`
	if bulk {
		query = `SELECT seq, event_id, subject, body, headers FROM outbox WHERE bulk AND seq > $2
		ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`
	}
	var n int
	var last int64
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, query, limit, after)
		if err != nil {
			return fmt.Errorf("select outbox: %w", err)
		}
		batch, err := pgx.CollectRows(rows, func(rw pgx.CollectableRow) (row, error) {
			var x row
			err := rw.Scan(&x.seq, &x.eventID, &x.subject, &x.body, &x.headers)
			return x, err
		})
		if err != nil {
			return fmt.Errorf("read outbox: %w", err)
		}
		if len(batch) == 0 {
			return nil
		}
		if err := r.publish(ctx, batch, bulk); err != nil {
			return err
		}
		seqs := make([]int64, len(batch))
		for i, x := range batch {
			seqs[i] = x.seq
		}
		// The rows are on EVENTS now. Their delete need not wait for a WAL flush: if PostgreSQL
		// crashed before flushing it, the rows would come back and be published again under the
		// same Nats-Msg-Id, which EVENTS drops as duplicates. Not waiting takes a flush off the
		// path of every event behind this batch.
		b := &pgx.Batch{}
		b.Queue(`SET LOCAL synchronous_commit = off`)
		b.Queue(`DELETE FROM outbox WHERE seq = ANY($1)`, seqs)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("delete published rows: %w", err)
		}
		n, last = len(batch), batch[len(batch)-1].seq
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	r.published.Add(float64(n))
	return n, last, nil
}

// publish sends the batch asynchronously and waits until every message is acknowledged.
func (r *Relay) publish(ctx context.Context, batch []row, bulk bool) (err error) {
	futures := make([]jetstream.PubAckFuture, 0, len(batch))
	var spans []trace.Span
	defer func() {
		for _, sp := range spans {
			if err != nil {
				sp.SetStatus(codes.Error, err.Error())
			}
			sp.End()
		}
	}()
	for _, x := range batch {
		msg := nats.NewMsg(x.subject)
		msg.Data = x.body
		var h map[string][]string
		if err := json.Unmarshal(x.headers, &h); err != nil {
			return fmt.Errorf("decode headers of %s: %w", x.eventID, err)
		}
		for k, v := range h {
			msg.Header[k] = v
		}
		if bulk {
			msg.Header.Set(streams.BulkEventHeader, "1")
		}
		if r.cfg.Tracing != nil {
			spans = append(spans, r.startPublishSpan(ctx, x, msg.Header))
		}
		f, err := r.js.PublishMsgAsync(msg, jetstream.WithMsgID(x.eventID))
		if err != nil {
			return fmt.Errorf("publish %s: %w", x.eventID, err)
		}
		futures = append(futures, f)
	}
	timeout := time.NewTimer(r.cfg.AckTimeout)
	defer timeout.Stop()
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish %s: %w", batch[i].eventID, err)
		case <-timeout.C:
			return fmt.Errorf("publish: no acknowledgement within %s", r.cfg.AckTimeout)
		case <-ctx.Done():
			return fmt.Errorf("publish: %w", ctx.Err())
		}
	}
	return nil
}

// stats updates the outbox gauges every 5 s until ctx ends. It has a goroutine of its own: a
// count over an import's 100,000 rows takes tens of milliseconds, which every event waiting
// for a relay loop would otherwise wait too.
func (r *Relay) stats(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		r.updateStats(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Relay) updateStats(ctx context.Context) {
	var count int64
	var age float64
	err := r.pool.QueryRow(ctx, `SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 FROM outbox`).Scan(&count, &age)
	if err != nil {
		if ctx.Err() == nil {
			r.logger.Warn("outbox stats", "error", err)
		}
		return
	}
	r.pending.Set(float64(count))
	r.oldest.Set(age)
}

// startPublishSpan opens the producer span of one event's publication as a child of the trace
// stored with its row, and puts the span's context into the message headers in its place.
func (r *Relay) startPublishSpan(ctx context.Context, x row, h nats.Header) trace.Span {
	for k, v := range h {
		// Producers may have stored the headers in any case; the propagator reads canonical keys.
		if c := textproto.CanonicalMIMEHeaderKey(k); c != k && (c == "Traceparent" || c == "Tracestate") {
			delete(h, k)
			h[c] = v
		}
	}
	parent := r.cfg.Tracing.Extract(context.WithoutCancel(ctx), h)
	m := telemetry.Messaging{Operation: "publish", Type: "publish", Destination: x.subject,
		Template: "events.{account_id}.{event_type}", MessageID: x.eventID}
	spanCtx, span := r.cfg.Tracing.Tracer().Start(parent, m.SpanName(),
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(m.Attributes()...))
	r.cfg.Tracing.Inject(spanCtx, h)
	return span
}
