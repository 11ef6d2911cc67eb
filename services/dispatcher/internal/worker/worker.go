// Package worker runs the delivery workers: it pulls ready jobs from the shared durable consumers,
// one per lane, each lane with its own fetch loop and its own bounded worker slots, performs one
// HTTP attempt per job and settles it. Because lanes share no slots, a burst queued in the bulk
// lane can never hold the slots that the default lane's jobs need. A failed attempt is
// acknowledged and the next one is published as a one-shot message schedule, so a delivery
// waiting for its retry holds no consumer slot that healthy endpoints need.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/customertext/webhooks/libs/delivery"
	"github.com/customertext/webhooks/services/dispatcher/internal/endpoint"
	"github.com/customertext/webhooks/services/dispatcher/internal/index"
	"github.com/customertext/webhooks/services/dispatcher/internal/metrics"
	"github.com/customertext/webhooks/services/dispatcher/internal/retry"
)

// Sender performs one HTTP attempt (libs/delivery.Sender).
type Sender interface {
	Send(ctx context.Context, req delivery.Request) delivery.Result
}

// Webhooks finds a webhook's current configuration at attempt time.
type Webhooks interface {
	Lookup(ctx context.Context, id string) (w index.Webhook, found bool, err error)
}

// Tracer continues the trace a job carries (libs/telemetry.Tracing): Extract reads its context
// from the job's headers, Tracer opens the spans of trace.go.
type Tracer interface {
	Extract(ctx context.Context, h nats.Header) context.Context
	Tracer() trace.Tracer
}

// Lane is one ready lane the pool consumes.
type Lane struct {
	Consumer jetstream.Consumer
	// Concurrency is the number of worker slots of this lane on this replica: jobs being
	// processed, except those waiting for a slot of a busy endpoint, which give theirs back (at
	// most Concurrency of them wait).
	Concurrency int
	// Limit, when set, further bounds the lane's jobs in process (the bulk lane's throttle).
	Limit *Throttle
	// Report, when set, is told how late each first attempt of this lane was picked up (the
	// default lane reports to the bulk lane's throttle).
	Report *Throttle
}

// Config tunes a Pool.
type Config struct {
	// FetchBatch is the most jobs pulled in one request (never more than free slots).
	FetchBatch int
	// DefaultTimeout of an attempt when the webhook names none; MaxTimeout caps a webhook's own.
	DefaultTimeout time.Duration
	MaxTimeout     time.Duration
	// AckWait of the consumer; long attempts send progress so the job is not redelivered.
	AckWait time.Duration
	// DrainTimeout is how long in-flight jobs may finish after Run's context ends; unfinished
	// ones are abandoned unacknowledged and redelivered elsewhere.
	DrainTimeout time.Duration
	// PublishTimeout bounds the wait for JetStream to acknowledge a schedule or attempt record.
	PublishTimeout time.Duration
	// Policy decides retries.
	Policy retry.Policy
}

// Pool is the delivery worker pool of one replica.
type Pool struct {
	js      jetstream.JetStream
	lanes   []Lane
	sender  Sender
	hooks   Webhooks
	guard   *endpoint.Guard
	tracer  Tracer
	metrics *metrics.Metrics
	logger  *slog.Logger
	cfg     Config
	now     func() time.Time
	records *recordBatcher
}

// New builds a Pool consuming from the lanes' consumers, each lane with its own slots.
func New(js jetstream.JetStream, lanes []Lane, sender Sender, hooks Webhooks, guard *endpoint.Guard,
	tracer Tracer, m *metrics.Metrics, logger *slog.Logger, cfg Config) (*Pool, error) {
	if len(lanes) == 0 {
		return nil, errors.New("new worker pool: at least one lane is required")
	}
	for i, l := range lanes {
		if l.Consumer == nil || l.Concurrency <= 0 {
			return nil, fmt.Errorf("new worker pool: lane %d needs a consumer and a positive concurrency", i)
		}
	}
	if cfg.Policy.MaxAttempts() == 0 {
		return nil, errors.New("new worker pool: a retry policy is required")
	}
	if cfg.FetchBatch <= 0 {
		cfg.FetchBatch = 64
	}
	if cfg.DefaultTimeout <= 0 {
		cfg.DefaultTimeout = delivery.DefaultTimeout
	}
	if cfg.MaxTimeout < cfg.DefaultTimeout {
		cfg.MaxTimeout = max(30*time.Second, cfg.DefaultTimeout)
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 60 * time.Second
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 20 * time.Second
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 10 * time.Second
	}
	return &Pool{js: js, lanes: lanes, sender: sender, hooks: hooks, guard: guard, tracer: tracer, metrics: m,
		logger: logger.With("component", "delivery"), cfg: cfg, now: time.Now,
		records: newRecordBatcher(js, cfg.PublishTimeout)}, nil
}

// Run pulls and processes jobs until ctx ends, then stops pulling and lets in-flight jobs finish
// for at most DrainTimeout.
func (p *Pool) Run(ctx context.Context) error {
	work, abort := context.WithCancel(context.WithoutCancel(ctx))
	defer abort()
	// The record batcher outlives every job: it stops only after the last one settled.
	batching, stopBatching := context.WithCancel(context.WithoutCancel(ctx))
	batcherDone := make(chan struct{})
	go func() { defer close(batcherDone); p.records.Run(batching) }()
	defer func() { stopBatching(); <-batcherDone }()

	var jobs, loops sync.WaitGroup
	for _, l := range p.lanes {
		loops.Add(1)
		go func() {
			defer loops.Done()
			p.pullLoop(ctx, work, l, &jobs)
		}()
	}
	loops.Wait()

	done := make(chan struct{})
	go func() { jobs.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(p.cfg.DrainTimeout):
		p.logger.Warn("drain deadline reached; abandoning in-flight deliveries for redelivery")
		abort()
		<-done
		return nil
	}
}

// pullLoop pulls one lane's jobs until ctx ends and processes them with work as their context,
// never holding more than the lane's Concurrency slots.
func (p *Pool) pullLoop(ctx, work context.Context, l Lane, jobs *sync.WaitGroup) {
	slots := make(chan struct{}, l.Concurrency)
	st := &laneState{parking: make(chan struct{}, l.Concurrency), report: l.Report}
	// take reserves one job's room: a slot, and a permit of the lane's limit if it has one.
	take := func(wait bool) bool {
		if wait {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return false
			}
		} else {
			select {
			case slots <- struct{}{}:
			default:
				return false
			}
		}
		switch {
		case l.Limit == nil:
			return true
		case wait && l.Limit.Acquire(ctx) == nil:
			return true
		case !wait && l.Limit.TryAcquire():
			return true
		}
		<-slots
		return false
	}
	giveBack := func() {
		<-slots
		if l.Limit != nil {
			l.Limit.Release()
		}
	}
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		// Pull only as many jobs as there is room for: a pulled job's AckWait is ticking.
		if !take(true) {
			continue
		}
		n := 1
		for n < p.cfg.FetchBatch && take(false) {
			n++
		}
		got, err := pull(l.Consumer, n, func(msg jetstream.Msg) {
			jobs.Add(1)
			p.metrics.InFlight.Inc()
			var once sync.Once
			release := func() { once.Do(func() { giveBack(); p.metrics.InFlight.Dec() }) }
			go func() {
				defer jobs.Done()
				defer release()
				p.handle(work, msg, st, release)
			}()
		})
		for range n - got {
			giveBack()
		}
		if err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
			if ctx.Err() == nil {
				p.logger.Warn("fetch delivery jobs", "error", err, "retry_in", backoff)
			}
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
	}
}

// laneState is what a lane's jobs share.
type laneState struct {
	// parking bounds the jobs waiting for a busy endpoint after giving back their worker slot.
	parking chan struct{}
	report  *Throttle
}

// pull fetches up to n jobs and hands each to start. When nothing is ready it waits for the
// first job (a second at most), then returns so the caller fetches the rest without waiting: a
// Fetch that waited for a whole batch would leave free slots idle while jobs trickle in
// (schedules firing).
func pull(c jetstream.Consumer, n int, start func(jetstream.Msg)) (int, error) {
	got := 0
	consume := func(batch jetstream.MessageBatch) error {
		for msg := range batch.Messages() {
			got++
			start(msg)
		}
		return batch.Error()
	}
	batch, err := c.FetchNoWait(n)
	if err == nil {
		err = consume(batch)
	}
	if got > 0 || (err != nil && !errors.Is(err, nats.ErrTimeout)) {
		return got, err
	}
	batch, err = c.Fetch(1, jetstream.FetchMaxWait(time.Second))
	if err == nil {
		err = consume(batch)
	}
	return got, err
}

// keepAlive tells JetStream the job is still being worked on while fn runs, when the attempt
// may outlast a good part of AckWait.
func (p *Pool) keepAlive(msg jetstream.Msg, timeout time.Duration) (stop func()) {
	if timeout < p.cfg.AckWait/3 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(p.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := msg.InProgress(); err != nil {
					p.logger.Debug("in-progress ack", "error", err)
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// waitRecord waits until the batcher stored an attempt record.
func (p *Pool) waitRecord(stored <-chan error) error {
	t := time.NewTimer(p.cfg.PublishTimeout)
	defer t.Stop()
	select {
	case err := <-stored:
		return err
	case <-t.C:
		return fmt.Errorf("attempt record: not stored within %s", p.cfg.PublishTimeout)
	}
}

// waitAck waits for a publish acknowledgement.
func (p *Pool) waitAck(ctx context.Context, f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	t := time.NewTimer(p.cfg.PublishTimeout)
	defer t.Stop()
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
	case <-t.C:
		return nil, fmt.Errorf("publish %s: no acknowledgement within %s", f.Msg().Subject, p.cfg.PublishTimeout)
	case <-ctx.Done():
		return nil, fmt.Errorf("publish %s: %w", f.Msg().Subject, ctx.Err())
	}
}
