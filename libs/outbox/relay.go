package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
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
}

// Relay publishes outbox rows to JetStream. Several replicas may run against the same table:
// each batch is locked with FOR UPDATE SKIP LOCKED.
type Relay struct {
	pool   *pgxpool.Pool
	js     jetstream.JetStream
	logger *slog.Logger
	cfg    RelayConfig

	published prometheus.Counter
	failures  prometheus.Counter
	pending   prometheus.Gauge
	oldest    prometheus.Gauge
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
	}
	for _, c := range []prometheus.Collector{r.published, r.failures, r.pending, r.oldest} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register outbox metrics: %w", err)
		}
	}
	return r, nil
}

// Run drains the outbox until ctx ends: at once when a transaction adds a row (LISTEN/NOTIFY),
// and every PollInterval regardless, with a growing pause while JetStream is unreachable.
func (r *Relay) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	listenCtx, stopListen := context.WithCancel(ctx)
	defer stopListen()
	listenDone := make(chan struct{})
	go func() {
		defer close(listenDone)
		r.listen(listenCtx, wake)
	}()
	defer func() { stopListen(); <-listenDone }()

	backoff := time.Duration(0)
	lastStats := time.Time{}
	for {
		n, err := r.drain(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			r.failures.Inc()
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
			r.logger.Warn("outbox publish failed; rows stay and will be retried", "error", err, "retry_in", backoff)
		default:
			backoff = 0
			if n > 0 {
				continue // more may be waiting
			}
		}
		if time.Since(lastStats) > 5*time.Second {
			r.updateStats(ctx)
			lastStats = time.Now()
		}
		wait, wakeC := r.cfg.PollInterval, (<-chan struct{})(wake)
		if backoff > 0 {
			wait, wakeC = backoff, nil // a notification must not cut a back-off short
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-wakeC:
		case <-t.C:
		}
		t.Stop()
	}
}

// listen forwards notifications to wake until ctx ends, reconnecting after errors.
func (r *Relay) listen(ctx context.Context, wake chan<- struct{}) {
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
				select {
				case wake <- struct{}{}:
				default:
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

// drain publishes one batch and returns how many rows it published.
func (r *Relay) drain(ctx context.Context) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT seq, event_id, subject, body, headers FROM outbox
			ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`, r.cfg.BatchSize)
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
		if err := r.publish(ctx, batch); err != nil {
			return err
		}
		seqs := make([]int64, len(batch))
		for i, x := range batch {
			seqs[i] = x.seq
		}
		if _, err := tx.Exec(ctx, `DELETE FROM outbox WHERE seq = ANY($1)`, seqs); err != nil {
			return fmt.Errorf("delete published rows: %w", err)
		}
		n = len(batch)
		return nil
	})
	if err != nil {
		return 0, err
	}
	r.published.Add(float64(n))
	return n, nil
}

// publish sends the batch asynchronously and waits until every message is acknowledged.
func (r *Relay) publish(ctx context.Context, batch []row) error {
	futures := make([]jetstream.PubAckFuture, 0, len(batch))
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
