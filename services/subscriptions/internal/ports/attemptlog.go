package ports

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/identity"
	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// Recorder stores a batch of attempts.
type Recorder interface {
	RecordAttempts(ctx context.Context, batch []domain.Attempt) error
}

// AttemptLogConfig tunes the writer.
type AttemptLogConfig struct {
	// BatchSize is the most records fetched and written at once; default 500.
	BatchSize int
	// MaxWait is how long a fetch waits for a full batch; default 1s. Shutdown waits at most this.
	MaxWait time.Duration
	// RetryDelay is how long a batch that failed to write waits before redelivery; default 5s.
	RetryDelay time.Duration
}

// AttemptLogMetrics are the writer's metrics.
type AttemptLogMetrics struct {
	Written      prometheus.Counter
	BatchSize    prometheus.Histogram
	BatchLatency prometheus.Histogram
	Lag          prometheus.Gauge
	Failures     prometheus.Counter
	// Invalid counts records (or whole messages) dropped as malformed, by reason.
	Invalid *prometheus.CounterVec
	// MaxDeliveries counts messages the consumer gave up on after streams.MaxDeliver deliveries.
	MaxDeliveries prometheus.Counter
}

// Reasons an attempt record or message is dropped: the "reason" label of
// subscriptions_attempt_records_invalid_total.
const (
	ReasonUndecodable  = "undecodable"
	ReasonMissingField = "missing_field"
	ReasonBadID        = "bad_id"
)

// NewAttemptLogMetrics creates and registers the writer's metrics.
func NewAttemptLogMetrics(reg prometheus.Registerer) (*AttemptLogMetrics, error) {
	m := &AttemptLogMetrics{
		Written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "subscriptions_attempt_records_written_total", Help: "Attempt records written to the delivery log."}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "subscriptions_attempt_writer_batch_size", Help: "Records per attempt-log batch.",
			Buckets: []float64{1, 5, 10, 25, 50, 100, 250, 500}}),
		BatchLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "subscriptions_attempt_writer_batch_seconds", Help: "Time to write one attempt-log batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 10)}),
		Lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "subscriptions_attempt_writer_lag_seconds", Help: "Age of the oldest record in the last written batch."}),
		Failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "subscriptions_attempt_writer_failures_total", Help: "Attempt-log batches that failed to write and were redelivered."}),
		Invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "subscriptions_attempt_records_invalid_total",
			Help: "Attempt records dropped (messages terminated) as malformed, by reason."}, []string{"reason"}),
		MaxDeliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "subscriptions_attempt_records_max_deliveries_total",
			Help: "ATTEMPTS messages the attempt-log consumer gave up on after its maximum deliveries (left in the stream)."}),
	}
	for _, r := range []string{ReasonUndecodable, ReasonMissingField, ReasonBadID} {
		m.Invalid.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{m.Written, m.BatchSize, m.BatchLatency, m.Lag, m.Failures, m.Invalid, m.MaxDeliveries} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register attempt log metrics: %w", err)
		}
	}
	return m, nil
}

// EnsureAttemptLogConsumer creates the durable attempt-log consumer shared by every replica.
func EnsureAttemptLogConsumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	return streams.EnsureConsumer(ctx, js, streams.Attempts, jetstream.ConsumerConfig{
		Durable:       streams.AttemptLogConsumer,
		FilterSubject: "attempts.>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxAckPending: 5000,
		MaxDeliver:    streams.MaxDeliver,
	})
}

// WatchAttemptLogMaxDeliveries gives a message the attempt-log consumer gave up on (a batch the
// database refused streams.MaxDeliver times) a visible end: counted and logged with its stream
// sequence. It stays in the stream, below the consumer's ack floor, for an operator to inspect.
func WatchAttemptLogMaxDeliveries(nc *nats.Conn, metrics *AttemptLogMetrics, log *slog.Logger) (*nats.Subscription, error) {
	return streams.WatchMaxDeliveries(nc, streams.Attempts, streams.AttemptLogConsumer, "subscriptions-max-deliveries",
		func(a streams.MaxDeliveries) {
			metrics.MaxDeliveries.Inc()
			log.Error("attempt-log consumer gave up on a message after its maximum deliveries; it stays in the stream",
				"stream", a.Stream, "stream_seq", a.StreamSeq, "deliveries", a.Deliveries)
		})
}

// AttemptLog writes attempt records from the ATTEMPTS stream to the delivery log in batches.
type AttemptLog struct {
	cons    jetstream.Consumer
	rec     Recorder
	cfg     AttemptLogConfig
	metrics *AttemptLogMetrics
	log     *slog.Logger
}

// NewAttemptLog returns a writer reading from cons.
func NewAttemptLog(cons jetstream.Consumer, rec Recorder, cfg AttemptLogConfig, metrics *AttemptLogMetrics, log *slog.Logger) *AttemptLog {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = time.Second
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 5 * time.Second
	}
	return &AttemptLog{cons: cons, rec: rec, cfg: cfg, metrics: metrics, log: log}
}

// Run fetches and writes batches until ctx ends. A batch interrupted by shutdown is left unacked
// and redelivered to another replica.
func (w *AttemptLog) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		batch, err := w.cons.Fetch(w.cfg.BatchSize, jetstream.FetchMaxWait(w.cfg.MaxWait))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.log.WarnContext(ctx, "fetch attempt records", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		var msgs []jetstream.Msg
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			w.log.WarnContext(ctx, "fetch attempt records", "error", err)
		}
		if len(msgs) > 0 {
			w.write(ctx, msgs)
		}
	}
	return nil
}

func (w *AttemptLog) write(ctx context.Context, msgs []jetstream.Msg) {
	start := time.Now()
	attempts := make([]domain.Attempt, 0, len(msgs))
	good := make([]jetstream.Msg, 0, len(msgs))
	oldest := start
	for _, m := range msgs {
		recs, err := decodeAttempts(m)
		if err != nil {
			// Terminated: never redelivered, so this is logged once.
			w.metrics.Invalid.WithLabelValues(ReasonUndecodable).Inc()
			w.log.ErrorContext(ctx, "terminating malformed attempt message", "subject", m.Subject(), "error", err)
			_ = m.TermWithReason("malformed attempt record: " + ReasonUndecodable)
			continue
		}
		for _, rec := range recs {
			if reason, err := checkRecord(rec); err != nil {
				w.metrics.Invalid.WithLabelValues(reason).Inc()
				w.log.ErrorContext(ctx, "dropping malformed attempt record", "subject", m.Subject(), "reason", reason, "error", err)
				continue
			}
			a := AttemptFromRecord(rec)
			if a.Time.Before(oldest) {
				oldest = a.Time
			}
			attempts = append(attempts, a)
		}
		good = append(good, m)
	}
	if len(attempts) == 0 {
		for _, m := range good {
			_ = m.TermWithReason("no valid attempt record")
		}
		return
	}
	if err := w.rec.RecordAttempts(ctx, attempts); err != nil {
		w.metrics.Failures.Inc()
		if ctx.Err() == nil {
			w.log.ErrorContext(ctx, "write attempt records", "count", len(attempts), "error", err)
		}
		for _, m := range good {
			delay := w.cfg.RetryDelay
			if meta, err := m.Metadata(); err == nil {
				delay = streams.NakDelay(meta.NumDelivered, w.cfg.RetryDelay, max(w.cfg.RetryDelay, 30*time.Second))
			}
			_ = m.NakWithDelay(delay)
		}
		return
	}
	for _, m := range good {
		if err := m.Ack(); err != nil {
			w.log.WarnContext(ctx, "ack attempt record", "error", err)
		}
	}
	w.metrics.Written.Add(float64(len(attempts)))
	w.metrics.BatchSize.Observe(float64(len(attempts)))
	w.metrics.BatchLatency.Observe(time.Since(start).Seconds())
	w.metrics.Lag.Set(time.Since(oldest).Seconds())
}

// decodeAttempts reads one message: an AttemptBatch (marked by its header) or a single
// AttemptRecord.
func decodeAttempts(m jetstream.Msg) ([]*webhooksv1.AttemptRecord, error) {
	if m.Headers().Get(streams.AttemptBatchHeader) != "" {
		var b webhooksv1.AttemptBatch
		if err := proto.Unmarshal(m.Data(), &b); err != nil {
			return nil, fmt.Errorf("decode attempt batch: %w", err)
		}
		if len(b.GetRecords()) == 0 {
			return nil, errors.New("decode attempt batch: no records")
		}
		return b.GetRecords(), nil
	}
	var rec webhooksv1.AttemptRecord
	if err := proto.Unmarshal(m.Data(), &rec); err != nil {
		return nil, fmt.Errorf("decode attempt record: %w", err)
	}
	return []*webhooksv1.AttemptRecord{&rec}, nil
}

// checkRecord validates what the writer needs of a record. Its ids must follow libs/identity:
// the delivery id in particular is copied into a subject by a redelivery from the log.
func checkRecord(rec *webhooksv1.AttemptRecord) (reason string, err error) {
	if rec.GetAttemptId() == "" || rec.GetAttemptTime() == nil {
		return ReasonMissingField, errors.New("attempt_id and attempt_time are required")
	}
	for _, err := range []error{identity.Check("attempt_id", rec.GetAttemptId(), identity.MaxLen),
		identity.Delivery(rec.GetDeliveryId()), identity.Event(rec.GetEventId()), identity.Account(rec.GetAccountId()),
		identity.Webhook(rec.GetWebhookId())} {
		if err != nil {
			return ReasonBadID, err
		}
	}
	return "", nil
}
