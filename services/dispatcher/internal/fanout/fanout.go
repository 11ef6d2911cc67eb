// Package fanout turns each event on the EVENTS stream into one delivery job per matching
// webhook on the DELIVERIES work queue. The event is acknowledged only after JetStream has
// acknowledged every job, and every job carries a dedupe id, so a crash between any two steps
// loses nothing and the re-run's jobs are dropped as duplicates.
package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/customertext/webhooks/libs/event"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/identity"
	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/libs/telemetry"
	"github.com/customertext/webhooks/services/dispatcher/internal/index"
	"github.com/customertext/webhooks/services/dispatcher/internal/metrics"
)

// Matcher finds the webhooks an event goes to.
type Matcher interface {
	Match(accountID, eventType string) []index.Webhook
}

// LanePicker chooses the ready lane for an account's jobs (tenant fairness).
type LanePicker interface {
	Lane(accountID string, jobs int) string
}

// DefaultLane is the lane of normal traffic.
const DefaultLane = "default"

// Config tunes a Fanout.
type Config struct {
	// Batch is how many events are fanned out together (one wait for all publish acks).
	Batch int
	// AckTimeout bounds the wait for the jobs' publish acknowledgements.
	AckTimeout time.Duration
	// Tracing, when set, records a "process" span per event (trace.go); its jobs carry it on.
	Tracing *telemetry.Tracing
}

// Fanout is the fan-out stage.
type Fanout struct {
	js      jetstream.JetStream
	cons    jetstream.Consumer
	idx     Matcher
	lanes   LanePicker
	metrics *metrics.Metrics
	logger  *slog.Logger
	cfg     Config
}

// New builds a Fanout reading from cons.
func New(js jetstream.JetStream, cons jetstream.Consumer, idx Matcher, lanes LanePicker, m *metrics.Metrics, logger *slog.Logger, cfg Config) *Fanout {
	if cfg.Batch <= 0 {
		cfg.Batch = 128
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 10 * time.Second
	}
	return &Fanout{js: js, cons: cons, idx: idx, lanes: lanes, metrics: m, logger: logger.With("component", "fanout"), cfg: cfg}
}

// Run consumes events until ctx ends. Events already pulled when ctx ends are still fanned out.
func (f *Fanout) Run(ctx context.Context) error {
	it, err := f.cons.Messages(jetstream.PullMaxMessages(2*f.cfg.Batch), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return fmt.Errorf("fanout: consume: %w", err)
	}
	msgs := make(chan jetstream.Msg, f.cfg.Batch)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(msgs)
		for {
			m, err := it.Next()
			switch {
			case errors.Is(err, jetstream.ErrMsgIteratorClosed):
				return
			case err != nil:
				// Heartbeats missed, reconnects, timeouts: the iterator carries on.
				f.logger.Warn("fanout: next message", "error", err)
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			msgs <- m
		}
	}()
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	defer func() { it.Stop(); <-readerDone }()

	// Work with a context that outlives ctx: pulled events are finished, not abandoned.
	work := context.WithoutCancel(ctx)
	for {
		m, ok := <-msgs
		if !ok {
			if ctx.Err() == nil {
				// Closed underneath us (consumer deleted, connection closed): let the process
				// restart rather than silently stop fanning out.
				return errors.New("fanout: event iterator closed unexpectedly")
			}
			return nil
		}
		batch := []jetstream.Msg{m}
	fill:
		for len(batch) < f.cfg.Batch {
			select {
			case m, ok := <-msgs:
				if !ok {
					break fill
				}
				batch = append(batch, m)
			default:
				break fill
			}
		}
		f.process(work, batch)
	}
}

type planned struct {
	msg     jetstream.Msg
	futures []jetstream.PubAckFuture
	err     error
	span    trace.Span // nil without tracing
}

// process fans out a batch of events: publish every job asynchronously, wait for the acks, then
// acknowledge each event whose jobs are all stored.
func (f *Fanout) process(ctx context.Context, batch []jetstream.Msg) {
	plans := make([]planned, 0, len(batch))
	for _, m := range batch {
		p := planned{msg: m}
		spanCtx := f.startSpan(ctx, &p)
		jobs, err := f.plan(m)
		f.traceJobs(spanCtx, jobs)
		if err != nil {
			var inv invalidError
			if errors.As(err, &inv) {
				p.endSpan(err)
				f.metrics.EventsInvalid.WithLabelValues(inv.reason).Inc()
				// Logged once: a terminated message is never delivered again.
				f.logger.Warn("terminating invalid event", "subject", truncate(m.Subject(), 256), "reason", inv.reason, "error", err)
				if err := m.TermWithReason(inv.reason); err != nil {
					f.logger.Warn("terminate invalid event", "error", err)
				}
				continue
			}
			p.err = err
		}
		if len(jobs) == 0 && p.err == nil {
			f.metrics.EventsTotal.WithLabelValues("no_match").Inc()
		}
		for _, j := range jobs {
			fut, err := f.js.PublishMsgAsync(j) // Nats-Msg-Id is set by plan
			if err != nil {
				p.err = fmt.Errorf("publish job: %w", err)
				break
			}
			p.futures = append(p.futures, fut)
		}
		plans = append(plans, p)
	}

	timeout := time.NewTimer(f.cfg.AckTimeout)
	defer timeout.Stop()
	for i := range plans {
		p := &plans[i]
		for _, fut := range p.futures {
			if p.err != nil {
				break
			}
			select {
			case <-fut.Ok():
			case err := <-fut.Err():
				p.err = fmt.Errorf("publish job: %w", err)
			case <-timeout.C:
				p.err = errors.New("publish job: no acknowledgement in time")
			case <-ctx.Done():
				p.err = ctx.Err()
			}
		}
		if p.err != nil {
			// Redelivered later; the jobs already stored are deduplicated then.
			// Back off: the consumer's MaxDeliver bounds the tries, and the server reports the
			// end (streams.WatchMaxDeliveries).
			delay := time.Second
			if meta, err := p.msg.Metadata(); err == nil {
				delay = streams.NakDelay(meta.NumDelivered, time.Second, streams.MaxNakDelay)
			}
			f.logger.Warn("fan-out failed; the event will be redelivered", "subject", p.msg.Subject(), "error", p.err, "retry_in", delay)
			f.metrics.PlatformFailures.WithLabelValues(metrics.StageFanout).Inc()
			_ = p.msg.NakWithDelay(delay)
			p.endSpan(p.err)
			continue
		}
		p.endSpan(nil)
		if len(p.futures) > 0 {
			f.metrics.EventsTotal.WithLabelValues("fanned_out").Inc()
		}
		if err := p.msg.Ack(); err != nil {
			f.logger.Warn("ack event", "subject", p.msg.Subject(), "error", err)
		}
	}
}

// Reasons an EVENTS message is terminated: the "reason" label of dispatcher_events_invalid_total.
const (
	ReasonBadSubject      = "bad_subject"
	ReasonBadAccountID    = "bad_account_id"
	ReasonBadEventID      = "bad_event_id"
	ReasonUnknownType     = "unknown_type"
	ReasonUnparseable     = "unparseable"
	ReasonSubjectMismatch = "subject_mismatch"
)

// InvalidReasons lists every reason, so that each series exists (at 0) from the start.
var InvalidReasons = []string{ReasonBadSubject, ReasonBadAccountID, ReasonBadEventID, ReasonUnknownType,
	ReasonUnparseable, ReasonSubjectMismatch}

type invalidError struct {
	reason string
	err    error
}

func (e invalidError) Error() string { return e.err.Error() }
func (e invalidError) Unwrap() error { return e.err }

func invalid(reason string, err error) error { return invalidError{reason: reason, err: err} }

// ParseEvent validates an EVENTS message: its subject, its envelope, and that the two agree.
// Errors are invalidError values naming the reason.
func ParseEvent(subject string, body []byte) (event.Envelope, time.Time, error) {
	account, typ, err := streams.ParseEventSubject(subject)
	if err != nil {
		return event.Envelope{}, time.Time{}, invalid(ReasonBadSubject, err)
	}
	if err := identity.Account(account); err != nil {
		return event.Envelope{}, time.Time{}, invalid(ReasonBadAccountID, err)
	}
	env, err := event.Parse(body)
	if err != nil {
		if strings.Contains(err.Error(), "unknown event type") {
			return event.Envelope{}, time.Time{}, invalid(ReasonUnknownType, err)
		}
		return event.Envelope{}, time.Time{}, invalid(ReasonUnparseable, err)
	}
	// The event id becomes part of every job's subject and Nats-Msg-Id: a 5,000-byte id once
	// made the server close the dispatcher's connection.
	if err := identity.Event(env.EventID); err != nil {
		return event.Envelope{}, time.Time{}, invalid(ReasonBadEventID, err)
	}
	if env.AccountID != account || env.Event != typ {
		return event.Envelope{}, time.Time{}, invalid(ReasonSubjectMismatch,
			fmt.Errorf("subject %s does not match body (account %.64q, event %.64q)", subject, env.AccountID, env.Event))
	}
	at, err := env.Time()
	if err != nil {
		return event.Envelope{}, time.Time{}, invalid(ReasonUnparseable, err)
	}
	return env, at, nil
}

// plan validates an event and builds its job messages.
func (f *Fanout) plan(m jetstream.Msg) ([]*nats.Msg, error) {
	env, at, err := ParseEvent(m.Subject(), m.Data())
	if err != nil {
		return nil, err
	}
	account, typ := env.AccountID, env.Event
	hooks := f.idx.Match(account, typ)
	if len(hooks) == 0 {
		return nil, nil
	}
	lane := DefaultLane
	if f.lanes != nil {
		lane = f.lanes.Lane(account, len(hooks))
	}
	// The workers' lateness signal: how long after it occurred an event of an API call (not of a
	// paced bulk write) reaches a worker.
	since := ""
	if m.Headers().Get(streams.BulkEventHeader) == "" {
		since = strconv.FormatInt(at.UnixNano(), 10)
	}
	out := make([]*nats.Msg, 0, len(hooks))
	for _, w := range hooks {
		id := DeliveryID(env.EventID, w.ID)
		job := &webhooksv1.DeliveryJob{
			DeliveryId: id,
			EventId:    env.EventID,
			EventType:  typ,
			AccountId:  account,
			WebhookId:  w.ID,
			Attempt:    1,
			Payload:    m.Data(),
			EventTime:  timestamppb.New(at),
		}
		body, err := proto.Marshal(job)
		if err != nil {
			return nil, fmt.Errorf("marshal job: %w", err)
		}
		nm := nats.NewMsg(streams.ReadySubject(lane, id))
		nm.Data = body
		CopyTrace(m.Headers(), nm.Header)
		// The dedupe id: a re-run of this event after a crash publishes the same ids.
		nm.Header.Set(jetstream.MsgIDHeader, streams.JobMsgID(id, "", 1))
		if since != "" {
			nm.Header.Set(streams.LatenessFromHeader, since)
		}
		out = append(out, nm)
	}
	f.metrics.JobsCreated.WithLabelValues(lane).Add(float64(len(out)))
	return out, nil
}

// DeliveryID is stable per (event, webhook): "del_<event uuid>_<webhook id>".
func DeliveryID(eventID, webhookID string) string {
	return "del_" + strings.TrimPrefix(eventID, "evt_") + "_" + webhookID
}

// CopyTrace copies the W3C trace context headers, whatever their case (NATS headers are case
// sensitive; libs/telemetry writes them canonicalised, "Traceparent"), under their canonical
// names, which is where telemetry's Extract looks.
func CopyTrace(from, to nats.Header) {
	for k, v := range from {
		if len(v) > 0 && (strings.EqualFold(k, "traceparent") || strings.EqualFold(k, "tracestate")) {
			to[http.CanonicalHeaderKey(k)] = []string{v[0]}
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
