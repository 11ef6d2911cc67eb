package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/customertext/webhooks/libs/auth"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	"github.com/customertext/webhooks/libs/outbox"
	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/libs/server"
	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/libs/telemetry"
	"github.com/customertext/webhooks/services/contacts/internal/adapters"
	"github.com/customertext/webhooks/services/contacts/internal/app"
	"github.com/customertext/webhooks/services/contacts/internal/ports"
)

const (
	serviceName = "contacts"

	defaultNATSURL = "nats://127.0.0.1:4222"
)

// version is the release stamped into the binary by the image build (-ldflags "-X
// main.version=..."), reported in traces.
var version = "dev"

// config is the service's validated configuration.
type config struct {
	NATSURL       string
	DatabaseURL   string
	GRPCAddr      string
	AdminAddr     string
	ServiceToken  string
	OTLPEndpoint  string
	LogLevel      string
	LogFormat     string
	ShutdownGrace time.Duration
	// PprofAddr is the loopback address of the /debug/pprof listener; empty serves no profiles.
	PprofAddr string
	// Migrate applies the schema migrations at start-up (MIGRATE_ON_START, default true); off
	// where a migrate Job runs them before a rollout.
	Migrate bool
}

// firstOf returns the first non-empty value.
func firstOf(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// envOr returns the environment value of key, or def when it is unset or empty.
func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func parseConfig(args []string, getenv func(string) string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet(serviceName, flag.ContinueOnError)
	fs.SetOutput(out)
	// Settings that may hold credentials take their environment fallback after parsing, so that
	// the usage text printed on a flag error never shows them.
	fs.StringVar(&c.NATSURL, "nats-url", "", "NATS server URL (env NATS_URL, default "+defaultNATSURL+")")
	fs.StringVar(&c.DatabaseURL, "database-url", "", "PostgreSQL URL (env DATABASE_URL, default "+postgres.DefaultURL+")")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", envOr(getenv, "GRPC_ADDR", "127.0.0.1:7101"), "gRPC listen address (env GRPC_ADDR)")
	fs.StringVar(&c.AdminAddr, "admin-addr", envOr(getenv, "ADMIN_ADDR", "127.0.0.1:7201"), "admin HTTP listen address (env ADMIN_ADDR)")
	fs.StringVar(&c.ServiceToken, "service-token", "", "service credential callers present (env SERVICE_TOKEN, required)")
	fs.StringVar(&c.OTLPEndpoint, "otlp-endpoint", getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "OTLP/gRPC endpoint host:port (env OTEL_EXPORTER_OTLP_ENDPOINT)")
	fs.StringVar(&c.LogLevel, "log-level", envOr(getenv, "LOG_LEVEL", "info"), "debug, info, warn or error (env LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", envOr(getenv, "LOG_FORMAT", "json"), "json or text (env LOG_FORMAT)")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", 10*time.Second, "how long in-flight calls may finish at shutdown")
	fs.StringVar(&c.PprofAddr, "pprof-addr", getenv("PPROF_ADDR"), "loopback address serving /debug/pprof; empty serves none (env PPROF_ADDR)")
	migrate := fs.String("migrate-on-start", envOr(getenv, "MIGRATE_ON_START", "true"), "apply schema migrations at start-up; false where a migrate Job runs them (env MIGRATE_ON_START)")
	if err := fs.Parse(args); err != nil {
		return config{}, fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q (subcommands: import, migrate)", fs.Args())
	}
	m, err := strconv.ParseBool(*migrate)
	if err != nil {
		return config{}, fmt.Errorf("config: MIGRATE_ON_START %q: want true or false", *migrate)
	}
	c.Migrate = m
	if c.PprofAddr != "" {
		if err := server.CheckLoopback(c.PprofAddr); err != nil {
			return config{}, fmt.Errorf("config: PPROF_ADDR: %w", err)
		}
	}
	c.NATSURL = firstOf(c.NATSURL, getenv("NATS_URL"), defaultNATSURL)
	c.DatabaseURL = firstOf(c.DatabaseURL, getenv("DATABASE_URL"), postgres.DefaultURL)
	c.ServiceToken = firstOf(c.ServiceToken, getenv("SERVICE_TOKEN"))
	switch {
	case c.ServiceToken == "":
		return config{}, errors.New("config: SERVICE_TOKEN (-service-token) is required")
	case c.NATSURL == "":
		return config{}, errors.New("config: NATS_URL (-nats-url) must not be empty")
	case c.GRPCAddr == "" || c.AdminAddr == "":
		return config{}, errors.New("config: GRPC_ADDR and ADMIN_ADDR must not be empty")
	case c.ShutdownGrace <= 0:
		return config{}, errors.New("config: -shutdown-grace must be positive")
	}
	return c, nil
}

// run is the whole program: the "import" subcommand, or the service until ctx ends.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "import" {
		return runImport(ctx, args[1:], getenv, stdout)
	}
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
	return serve(ctx, cfg, logger)
}

func serve(ctx context.Context, cfg config, logger *slog.Logger) error {
	tracing, err := telemetry.NewTracing(ctx, serviceName, version, cfg.OTLPEndpoint)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tracing.Shutdown(sctx); err != nil {
			logger.Warn("tracing shutdown", "error", err)
		}
	}()
	reg := telemetry.NewRegistry()

	pool, err := postgres.Open(ctx, cfg.DatabaseURL, adapters.Schema, 0)
	if err != nil {
		return err
	}
	defer pool.Close()
	if cfg.Migrate {
		if err := adapters.Migrate(ctx, pool); err != nil {
			return err
		}
	}

	nc, err := nats.Connect(cfg.NATSURL,
		nats.Name(serviceName),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(500*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			logger.Warn("nats disconnected; events wait in the outbox", "error", err)
		}),
		nats.ReconnectHandler(func(*nats.Conn) { logger.Info("nats reconnected") }),
	)
	if err != nil {
		return fmt.Errorf("connect to nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	relay, err := outbox.NewRelay(pool, js, logger, reg, outbox.RelayConfig{Schema: adapters.Schema, Tracing: tracing})
	if err != nil {
		return err
	}

	metrics, err := app.NewMetrics(reg)
	if err != nil {
		return err
	}
	svc := app.New(app.Deps{
		Store: adapters.NewStore(pool), Logger: logger, Metrics: metrics, Inject: tracing.Inject,
	})
	grpcSrv, err := server.NewGRPC(reg, tracing, server.StatusInterceptor(logger), auth.ServiceInterceptor(cfg.ServiceToken))
	if err != nil {
		return err
	}
	contactsv1.RegisterContactServiceServer(grpcSrv.Server, ports.NewGRPC(svc, logger))
	// Readiness needs PostgreSQL only: while NATS is down the API keeps accepting changes and
	// their events wait in the outbox, so taking replicas out of service would only cause errors.
	// The NATS connection is a gauge (and outbox_oldest_age_seconds shows the wait) for alerts.
	if err := reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "contacts_nats_connected", Help: "1 while the connection to NATS is up, else 0.",
	}, func() float64 {
		if nc.IsConnected() {
			return 1
		}
		return 0
	})); err != nil {
		return fmt.Errorf("register nats gauge: %w", err)
	}
	admin := server.NewAdmin(reg, logger, map[string]server.Check{
		"postgres": func(ctx context.Context) error { return pool.Ping(ctx) },
	})

	var lc net.ListenConfig
	grpcLis, err := lc.Listen(ctx, "tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen grpc: %w", err)
	}
	adminLis, err := lc.Listen(ctx, "tcp", cfg.AdminAddr)
	if err != nil {
		_ = grpcLis.Close()
		return fmt.Errorf("listen admin: %w", err)
	}
	logger.Info("contacts serving", "grpc_addr", grpcLis.Addr().String(), "admin_addr", adminLis.Addr().String())

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return grpcSrv.Serve(gctx, grpcLis, cfg.ShutdownGrace) })
	g.Go(func() error { return server.ServeHTTP(gctx, adminLis, admin, cfg.ShutdownGrace) })
	g.Go(func() error { return server.ServePprof(gctx, cfg.PprofAddr, cfg.ShutdownGrace) })
	g.Go(func() error {
		// The API accepts writes while NATS is unreachable: events wait in the outbox, and the
		// relay starts once the streams are ensured.
		if !streams.EnsureWithRetry(gctx, js, streams.Config{}, logger) {
			return nil
		}
		return relay.Run(gctx)
	})
	err = g.Wait()
	logger.Info("contacts stopped", "error", err)
	return err
}
