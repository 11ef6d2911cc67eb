package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
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

	nc, err := nats.Connect(cfg.NATSURL, nats.Name(serviceName), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(false),
		nats.DrainTimeout(2*time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", "error", err)
			}
		}))
	if err != nil {
		return fmt.Errorf("connect to nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	setupCtx, cancelSetup := context.WithTimeout(ctx, 30*time.Second)
	defer cancelSetup()
	if err := streams.Ensure(setupCtx, js, streams.Config{Replicas: cfg.StreamReplicas}); err != nil {
		return err
	}
	throttle := worker.NewThrottle(worker.ThrottleConfig{Target: cfg.BulkTarget, Min: cfg.BulkMin, Max: cfg.BulkConcurrency},
		func(n int) { m.BulkLimit.Set(float64(n)) })
	fanoutCons, laneCons, err := ensureConsumers(setupCtx, js, cfg, throttle)
	if err != nil {
		return err
	}
	cancelSetup()

	conn, err := server.DialInternal(cfg.SubscriptionsAddr, cfg.ServiceToken, tracing)
	if err != nil {
		return fmt.Errorf("subscriptions client: %w", err)
	}
	defer conn.Close()
	idx := index.New()
	syncer := index.NewSyncer(idx, index.ClientSource{Client: webhooksv1.NewWebhookConfigServiceClient(conn)}, nc, logger,
		index.SyncConfig{ResyncInterval: cfg.ResyncInterval})

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

	replicas := peers.New(nc, streams.DispatcherPeers, uuid.NewString(), 2*time.Second, func(n int) { m.Replicas.Set(float64(n)) })
	lanes := fanout.NewFairness(cfg.BulkRate, cfg.BulkBurst, replicas.Count)
	fan := fanout.New(js, fanoutCons, idx, lanes, m, logger, fanout.Config{Tracing: tracing})
	// Leave a few seconds of the shutdown budget for closing connections.
	drain := max(cfg.ShutdownTimeout-3*time.Second, time.Second)
	pool, err := worker.New(js, laneCons, sender, syncer, guard, tracing, m, logger, worker.Config{
		DefaultTimeout: cfg.DeliveryTimeout,
		AckWait:        cfg.AckWait,
		DrainTimeout:   drain,
		Policy:         policy,
	})
	if err != nil {
		return err
	}

	lis, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("listen admin: %w", err)
	}
	admin := server.NewAdmin(reg, logger, map[string]server.Check{
		"nats": func(context.Context) error {
			if !nc.IsConnected() {
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

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return server.ServeHTTP(gctx, lis, admin, 2*time.Second) })
	g.Go(func() error { return server.ServePprof(gctx, cfg.PprofAddr, 2*time.Second) })
	g.Go(func() error { return syncer.Run(gctx) })
	g.Go(func() error {
		// Fanning out before the index is loaded would ack events with no jobs.
		select {
		case <-gctx.Done():
			return nil
		case <-idx.Ready():
		}
		return fan.Run(gctx)
	})
	g.Go(func() error {
		select {
		case <-gctx.Done():
			return nil
		case <-idx.Ready():
		}
		return pool.Run(gctx)
	})
	g.Go(func() error { pollBacklog(gctx, js, m, logger); return nil })
	g.Go(func() error { throttle.Run(gctx); return nil })
	g.Go(func() error { return replicas.Run(gctx) })
	err = g.Wait()
	if derr := nc.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
		logger.Warn("drain nats", "error", derr)
	}
	logger.Info("dispatcher stopped")
	return err
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
		MaxDeliver:    -1,
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
			MaxDeliver:    -1,
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
