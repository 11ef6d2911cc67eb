package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/customertext/webhooks/libs/auth"
	campaignsv1 "github.com/customertext/webhooks/libs/gen/customertext/campaigns/v1"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	"github.com/customertext/webhooks/libs/outbox"
	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/libs/server"
	"github.com/customertext/webhooks/libs/sms"
	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/libs/telemetry"
	"github.com/customertext/webhooks/services/campaigns/internal/adapters"
	"github.com/customertext/webhooks/services/campaigns/internal/app"
	"github.com/customertext/webhooks/services/campaigns/internal/ports"
)

const (
	serviceName   = "campaigns"
	shutdownGrace = 10 * time.Second
)

// version is the release stamped into the binary by the image build (-ldflags "-X
// main.version=..."), reported in traces.
var version = "dev"

// run builds every dependency from the configuration and serves until ctx ends.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "migrate" {
		return runMigrate(ctx, args[1:], getenv, stdout)
	}
	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	logger, err := telemetry.NewLogger(stdout, serviceName, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	tracing, err := telemetry.NewTracing(ctx, serviceName, version, cfg.OTLPEndpoint)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := tracing.Shutdown(sctx); err != nil {
			logger.Warn("flush traces", "error", err)
		}
	}()
	reg := telemetry.NewRegistry()

	// Room for the sender's lock connection and SEND_CONCURRENCY recorders per campaign.
	pool, err := postgres.Open(ctx, cfg.DatabaseURL, adapters.Schema, int32(min(10+2*cfg.SendConcurrency, 100)))
	if err != nil {
		return err
	}
	defer pool.Close()
	if cfg.Migrate {
		if err := adapters.Migrate(ctx, pool); err != nil {
			return err
		}
	}

	// The service starts and accepts work while NATS is unreachable: events wait in the outbox.
	nc, err := nats.Connect(cfg.NATSURL, nats.Name(serviceName), nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true), nats.ReconnectWait(500*time.Millisecond))
	if err != nil {
		return fmt.Errorf("connect to nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	contactsConn, err := server.DialInternal(cfg.ContactsAddr, cfg.ServiceToken, tracing)
	if err != nil {
		return fmt.Errorf("contacts client: %w", err)
	}
	defer contactsConn.Close()

	metrics, err := ports.NewMetrics(reg)
	if err != nil {
		return err
	}
	store := adapters.NewStore(pool, tracing)
	sender := app.NewSender(store, adapters.NewContacts(contactsv1.NewContactServiceClient(contactsConn)),
		sms.NewSandbox(pool), metrics, logger, app.SenderConfig{Concurrency: cfg.SendConcurrency})
	svc := app.NewService(store, sender)

	relay, err := outbox.NewRelay(pool, js, logger, reg, outbox.RelayConfig{Schema: adapters.Schema, Tracing: tracing})
	if err != nil {
		return err
	}
	grpcSrv, err := server.NewGRPC(reg, tracing, server.StatusInterceptor(logger), auth.ServiceInterceptor(cfg.ServiceToken))
	if err != nil {
		return err
	}
	campaignsv1.RegisterCampaignServiceServer(grpcSrv.Server, ports.NewGRPC(svc, logger))
	admin := server.NewAdmin(reg, logger, map[string]server.Check{
		"postgres": func(ctx context.Context) error { return pool.Ping(ctx) },
		"nats": func(context.Context) error {
			if !nc.IsConnected() {
				return errors.New("nats not connected")
			}
			return nil
		},
	})

	var lc net.ListenConfig
	grpcLis, err := lc.Listen(ctx, "tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen grpc: %w", err)
	}
	adminLis, err := lc.Listen(ctx, "tcp", cfg.AdminAddr)
	if err != nil {
		grpcLis.Close()
		return fmt.Errorf("listen admin: %w", err)
	}
	logger.Info("listening", "grpc_addr", grpcLis.Addr().String(), "admin_addr", adminLis.Addr().String(),
		"send_concurrency", cfg.SendConcurrency)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return grpcSrv.Serve(gctx, grpcLis, shutdownGrace) })
	g.Go(func() error { return server.ServeHTTP(gctx, adminLis, admin, shutdownGrace) })
	g.Go(func() error { return server.ServePprof(gctx, cfg.PprofAddr, shutdownGrace) })
	g.Go(func() error {
		if !streams.EnsureWithRetry(gctx, js, streams.Config{}, logger) {
			return nil
		}
		return relay.Run(gctx)
	})
	// The sender resumes campaigns left SENDING by a crash as soon as it starts.
	g.Go(func() error { return sender.Run(gctx) })
	err = g.Wait()
	logger.Info("stopped", "error", err)
	return err
}
