package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/customertext/webhooks/libs/delivery"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/server"
	"github.com/customertext/webhooks/libs/ssrf"
	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/libs/telemetry"
	"github.com/customertext/webhooks/services/dispatcher/internal/endpoint"
	"github.com/customertext/webhooks/services/dispatcher/internal/fanout"
	"github.com/customertext/webhooks/services/dispatcher/internal/index"
	"github.com/customertext/webhooks/services/dispatcher/internal/metrics"
	"github.com/customertext/webhooks/services/dispatcher/internal/peers"
	"github.com/customertext/webhooks/services/dispatcher/internal/retry"
	"github.com/customertext/webhooks/services/dispatcher/internal/worker"
)

const serviceName = "dispatcher"

// run is the composition root: it builds every dependency from the configuration and
// supervises the components until ctx ends or one of them fails.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) (err error) {
	defer func() {
		// A shutdown requested while starting is not a failure.
		if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
			err = nil
		}
	}()
	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	logger, err := telemetry.NewLogger(stdout, serviceName, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return fmt.Errorf("logger: %w", err)
	}
	reg := telemetry.NewRegistry()
	tracing, err := telemetry.NewTracing(ctx, serviceName, cfg.Version, cfg.OTLPEndpoint)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := tracing.Shutdown(sctx); err != nil {
			logger.Warn("shutdown tracing", "error", err)
		}
	}()
	m, err := metrics.New(reg)
	if err != nil {
		return err
	}

	conn, err := server.DialInternal(cfg.SubscriptionsAddr, cfg.ServiceToken, tracing)
	if err != nil {
		return fmt.Errorf("subscriptions client: %w", err)
	}
	defer conn.Close()
	idx := index.New()
	source := index.ClientSource{Client: webhooksv1.NewWebhookConfigServiceClient(conn)}

	sender, err := delivery.NewSender(delivery.Config{
		Guard:     ssrf.New(cfg.SSRFAllow),
		UserAgent: "CustomerText-Webhooks/" + cfg.Version,
		// The per-endpoint cap (per webhook URL) is the guard's; one host may serve many
		// endpoints (Zapier, Make), so the transport may use the replica's whole concurrency on it.
		MaxConnsPerHost: cfg.Concurrency + cfg.BulkConcurrency,
		Propagator:      tracing.Propagator,
	})
	if err != nil {
		return fmt.Errorf("sender: %w", err)
	}
	defer sender.Close()
	guard := endpoint.New(endpoint.Config{MaxConcurrent: cfg.PerEndpoint, FailureThreshold: cfg.CircuitFailures, OpenFor: cfg.CircuitOpenFor})
	policy, err := retry.New(cfg.RetrySchedule, 0.2, nil)
	if err != nil {
		return err
	}
	for _, c := range []prometheus.Collector{openCircuits(guard), indexSize(idx)} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	initSeries(m)

	lis, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("listen admin: %w", err)
	}
	var current atomic.Pointer[nats.Conn]
	admin := server.NewAdmin(reg, logger, map[string]server.Check{
		"nats": func(context.Context) error {
			if nc := current.Load(); nc == nil || !nc.IsConnected() {
				return errors.New("not connected")
			}
			return nil
		},
		"index": func(context.Context) error {
			if !idx.Loaded() {
				return errors.New("webhook index not loaded")
			}
			return nil
		},
	})
	logger.Info("dispatcher starting", "admin_addr", lis.Addr().String(), "version", cfg.Version,
		"concurrency", cfg.Concurrency, "bulk_concurrency", cfg.BulkConcurrency, "per_endpoint_concurrency", cfg.PerEndpoint)

	deps := sessionDeps{cfg: cfg, logger: logger, m: m, idx: idx, source: source, sender: sender, guard: guard,
		policy: policy, tracing: tracing, current: &current}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return server.ServeHTTP(gctx, lis, admin, 2*time.Second) })
	g.Go(func() error { return server.ServePprof(gctx, cfg.PprofAddr, 2*time.Second) })
	g.Go(func() error { return superviseSessions(gctx, deps) })
	err = g.Wait()
	logger.Info("dispatcher stopped")
	return err
}

// sessionDeps is what outlives a NATS session: everything but the connection and what is built on it.
type sessionDeps struct {
	cfg     config
	logger  *slog.Logger
	m       *metrics.Metrics
	idx     *index.Index
	source  index.Source
	sender  *delivery.Sender
	guard   *endpoint.Guard
	policy  retry.Policy
	tracing *telemetry.Tracing
	current *atomic.Pointer[nats.Conn]
}

// errSessionEnded marks a session that ended while the process was meant to go on: the server
// closed the connection (nats.go does not reconnect after some server errors, such as a control
// line over the maximum) or a consumer's message stream closed.
var errSessionEnded = errors.New("nats session ended")

// superviseSessions runs NATS sessions until ctx ends. The first session's setup errors are
// returned (a misconfigured replica fails fast); a session that ends later is rebuilt on a new
// connection after a back-off, so no single message or server decision can stop the process.
func superviseSessions(ctx context.Context, d sessionDeps) error {
	backoff := time.Duration(0)
	for first := true; ; first = false {
		started, err := runSession(ctx, d)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && first && !started {
			return err
		}
		if started {
			backoff = 0
		}
		backoff = min(max(2*backoff, 250*time.Millisecond), 10*time.Second)
		d.m.NATSRestarts.Inc()
		d.logger.Error("nats session ended; starting a new one", "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// runSession connects to NATS, ensures the topology and runs every component built on the
// connection until ctx ends or the session ends. It reports whether the components started.
func runSession(ctx context.Context, d sessionDeps) (started bool, err error) {
	cfg, logger, m := d.cfg, d.logger, d.m
	sctx, endSession := context.WithCancelCause(ctx)
	defer endSession(nil)
	nc, err := nats.Connect(cfg.NATSURL, nats.Name(serviceName), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(false),
		nats.DrainTimeout(2*time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", "error", err)
			}
		}),
		nats.ClosedHandler(func(c *nats.Conn) {
			endSession(fmt.Errorf("%w: connection closed: %v", errSessionEnded, c.LastError()))
		}))
	if err != nil {
		return false, fmt.Errorf("connect to nats: %w", err)
	}
	defer nc.Close()
	d.current.Store(nc)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		return false, fmt.Errorf("jetstream: %w", err)
	}
	setupCtx, cancelSetup := context.WithTimeout(sctx, 30*time.Second)
	defer cancelSetup()
	// Retried in short tries: after a node loss a request about a stream whose leader died is
	// never answered, and one unanswered try must not end the process.
	if !streams.EnsureWithRetry(setupCtx, js, streams.Config{Replicas: cfg.StreamReplicas}, logger) {
		return false, fmt.Errorf("ensure streams: %w", context.Cause(setupCtx))
	}
	throttle := worker.NewThrottle(worker.ThrottleConfig{Target: cfg.BulkTarget, Min: cfg.BulkMin, Max: cfg.BulkConcurrency},
		func(n int) { m.BulkLimit.Set(float64(n)) })
	fanoutCons, laneCons, err := ensureConsumers(setupCtx, js, cfg, throttle)
	if err != nil {
		return false, err
	}
	cancelSetup()
	watches, err := watchMaxDeliveries(nc, js, m, logger)
	if err != nil {
		return false, err
	}
	defer func() {
		for _, w := range watches {
			_ = w.Unsubscribe()
		}
	}()

	syncer := index.NewSyncer(d.idx, d.source, nc, logger, index.SyncConfig{ResyncInterval: cfg.ResyncInterval})
	replicas := peers.New(nc, streams.DispatcherPeers, uuid.NewString(), 2*time.Second, func(n int) { m.Replicas.Set(float64(n)) })
	lanes := fanout.NewFairness(cfg.BulkRate, cfg.BulkBurst, replicas.Count)
	fan := fanout.New(js, fanoutCons, d.idx, lanes, m, logger, fanout.Config{Tracing: d.tracing})
	// Leave a few seconds of the shutdown budget for closing connections.
	drain := max(cfg.ShutdownTimeout-3*time.Second, time.Second)
	pool, err := worker.New(js, laneCons, d.sender, syncer, d.guard, d.tracing, m, logger, worker.Config{
		DefaultTimeout: cfg.DeliveryTimeout,
		AckWait:        cfg.AckWait,
		DrainTimeout:   drain,
		Policy:         d.policy,
	})
	if err != nil {
		return false, err
	}

	g, gctx := errgroup.WithContext(sctx)
	g.Go(func() error { return syncer.Run(gctx) })
	g.Go(func() error {
		// Fanning out before the index is loaded would ack events with no jobs.
		select {
		case <-gctx.Done():
			return nil
		case <-d.idx.Ready():
		}
		if err := fan.Run(gctx); err != nil {
			return fmt.Errorf("%w: %w", errSessionEnded, err)
		}
		return nil
	})
	g.Go(func() error {
		select {
		case <-gctx.Done():
			return nil
		case <-d.idx.Ready():
		}
		return pool.Run(gctx)
	})
	g.Go(func() error { pollBacklog(gctx, js, m, logger); return nil })
	g.Go(func() error { throttle.Run(gctx); return nil })
	g.Go(func() error { return replicas.Run(gctx) })
	err = g.Wait()
	if err == nil && ctx.Err() == nil {
		err = context.Cause(sctx)
	}
	if derr := nc.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
		logger.Warn("drain nats", "error", derr)
	}
	return true, err
}

// laneConsumers names the delivery consumers, one per lane.
func laneConsumers() []struct{ lane, durable string } {
	return []struct{ lane, durable string }{
		{fanout.DefaultLane, streams.DeliveryConsumer},
		{fanout.BulkLane, streams.DeliveryBulkConsumer},
	}
}

// laneConcurrency is a lane's worker slots on this replica. Each lane has its own, so the bulk
// lane's jobs never take the slots that the default lane's jobs need.
func laneConcurrency(cfg config, lane string) int {
	if lane == fanout.BulkLane {
		return cfg.BulkConcurrency
	}
	return cfg.Concurrency
}

// ensureConsumers creates or updates the durable consumers shared by every replica: the fan-out
// on EVENTS and one delivery consumer per lane on DELIVERIES.
func ensureConsumers(ctx context.Context, js jetstream.JetStream, cfg config, throttle *worker.Throttle) (jetstream.Consumer, []worker.Lane, error) {
	fan, err := streams.EnsureConsumer(ctx, js, streams.Events, jetstream.ConsumerConfig{
		Durable:       streams.FanoutConsumer,
		Description:   "dispatcher fan-out: one delivery job per (event, webhook)",
		FilterSubject: "events.>",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 4096,
		MaxDeliver:    streams.MaxDeliver,
	})
	if err != nil {
		return nil, nil, err
	}
	// The default lane's consumer is updated first: an older deployment's consumer filtered
	// deliveries.ready.>, which would overlap the bulk lane's on the work queue.
	var lanes []worker.Lane
	for _, l := range laneConsumers() {
		conc := laneConcurrency(cfg, l.lane)
		c, err := streams.EnsureConsumer(ctx, js, streams.Deliveries, jetstream.ConsumerConfig{
			Durable:     l.durable,
			Description: "dispatcher delivery workers, " + l.lane + " lane (ready jobs only: acking a schedule would cancel it)",
			// Never deliveries.> : a consumer that acks a schedule message cancels it.
			FilterSubject: streams.ReadySubject(l.lane, ">"),
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.AckWait,
			// Each replica pulls at most the lane's concurrency; room for 16 replicas.
			MaxAckPending: conc * 16,
			MaxDeliver:    streams.MaxDeliver,
		})
		if err != nil {
			return nil, nil, err
		}
		lane := worker.Lane{Consumer: c, Concurrency: conc}
		if l.lane == fanout.BulkLane {
			lane.Limit = throttle
		} else {
			lane.Report = throttle
		}
		lanes = append(lanes, lane)
	}
	return fan, lanes, nil
}
