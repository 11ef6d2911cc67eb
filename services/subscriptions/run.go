package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/customertext/webhooks/libs/delivery"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/libs/server"
	"github.com/customertext/webhooks/libs/ssrf"
	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/libs/telemetry"
	"github.com/customertext/webhooks/services/subscriptions/internal/adapters/natsbus"
	"github.com/customertext/webhooks/services/subscriptions/internal/adapters/pgstore"
	"github.com/customertext/webhooks/services/subscriptions/internal/app"
	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
	"github.com/customertext/webhooks/services/subscriptions/internal/ports"
	"github.com/customertext/webhooks/services/subscriptions/internal/ports/httpapi"
)

const (
	serviceName       = "subscriptions"
	shutdownGrace     = 10 * time.Second
	retentionInterval = time.Hour
)

// run is the whole program: `subscriptions [flags]` serves; `subscriptions create-account -name
// NAME -admin-email EMAIL` creates an account and its first admin API key and prints both;
// `create-api-key -account-id ID -name NAME -role ROLE` issues another key and `revoke-api-key
// -account-id ID -id KEY_ID` revokes one.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return start(ctx, args, getenv, stdout, nil)
}

// addrs are the listeners' bound addresses, reported to tests that listen on port 0.
type addrs struct {
	GRPC  string
	HTTP  string
	Admin string
}

func start(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, ready func(addrs)) error {
	if len(args) > 0 {
		switch args[0] {
		case "create-account":
			return createAccount(ctx, args[1:], getenv, stdout)
		case "create-api-key":
			return createAPIKey(ctx, args[1:], getenv, stdout)
		case "revoke-api-key":
			return revokeAPIKey(ctx, args[1:], getenv, stdout)
		}
	}
	if len(args) > 0 && args[0] == "migrate" {
		return runMigrate(ctx, args[1:], getenv, stdout)
	}
	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, stdout, ready)
}

func serve(ctx context.Context, cfg config, stdout io.Writer, ready func(addrs)) error {
	logger, err := telemetry.NewLogger(stdout, serviceName, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	tracing, err := telemetry.NewTracing(ctx, serviceName, cfg.UserAgentVersion, cfg.OTLPEndpoint)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tracing.Shutdown(sctx); err != nil {
			logger.Warn("shutdown tracing", "error", err)
		}
	}()
	reg := telemetry.NewRegistry()

	pool, err := postgres.Open(ctx, cfg.DatabaseURL, pgstore.Schema, 10)
	if err != nil {
		return err
	}
	defer pool.Close()
	if cfg.Migrate {
		if err := pgstore.Migrate(ctx, pool); err != nil {
			return err
		}
	}
	store := pgstore.New(pool, cfg.Keys)

	nc, err := nats.Connect(cfg.NATSURL, nats.Name(serviceName), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect to nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	// Retried in short tries (see streams.EnsureWithRetry), within a bounded start-up.
	ensureCtx, cancelEnsure := context.WithTimeout(ctx, 30*time.Second)
	ok := streams.EnsureWithRetry(ensureCtx, js, streams.Config{}, logger)
	cancelEnsure()
	if !ok {
		return fmt.Errorf("ensure streams: %w", context.Cause(ensureCtx))
	}
	cons, err := ports.EnsureAttemptLogConsumer(ctx, js)
	if err != nil {
		return err
	}

	sender, err := delivery.NewSender(delivery.Config{
		Guard:      ssrf.New(cfg.SSRFAllow),
		UserAgent:  "CustomerText-Webhooks/" + cfg.UserAgentVersion,
		Propagator: tracing.Propagator,
	})
	if err != nil {
		return err
	}
	appMetrics, err := app.NewMetrics(reg)
	if err != nil {
		return err
	}
	svc := app.New(store, natsbus.NewNotifier(nc), natsbus.NewRedeliverer(js), natsbus.NewEventLog(js), sender, app.Config{
		Policy:                domain.Policy{AllowInsecureHTTP: cfg.AllowInsecureHTTP, Guard: ssrf.New(cfg.SSRFAllow)},
		MaxWebhooksPerAccount: cfg.MaxWebhooksPerAccount,
		AutoDisableAfter:      cfg.AutoDisableAfter,
		Retention:             cfg.AttemptRetention,
	}, appMetrics, logger)

	logMetrics, err := ports.NewAttemptLogMetrics(reg)
	if err != nil {
		return err
	}
	writer := ports.NewAttemptLog(cons, svc, ports.AttemptLogConfig{}, logMetrics, logger)
	maxDeliveries, err := ports.WatchAttemptLogMaxDeliveries(nc, logMetrics, logger)
	if err != nil {
		return err
	}
	defer func() { _ = maxDeliveries.Unsubscribe() }()

	grpcSrv, err := server.NewGRPC(reg, tracing, server.StatusInterceptor(logger), ports.AuthInterceptor(svc, cfg.ServiceToken, logger))
	if err != nil {
		return err
	}
	webhooksv1.RegisterWebhookServiceServer(grpcSrv.Server, ports.NewWebhookServer(svc, logger))
	webhooksv1.RegisterWebhookConfigServiceServer(grpcSrv.Server, ports.NewConfigServer(svc, logger))
	webhooksv1.RegisterAccountServiceServer(grpcSrv.Server, ports.NewAccountServer(svc, logger))

	// The HTTP API calls the gRPC server in process: same interceptors, same handlers.
	api, err := httpapi.New(grpcSrv.Server, httpapi.Config{AllowedOrigins: cfg.CORSOrigins})
	if err != nil {
		return err
	}

	admin := server.NewAdmin(reg, logger, map[string]server.Check{
		"postgres": store.Ping,
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
	httpLis, err := lc.Listen(ctx, "tcp", cfg.HTTPAddr)
	if err != nil {
		_ = grpcLis.Close()
		return fmt.Errorf("listen http: %w", err)
	}
	adminLis, err := lc.Listen(ctx, "tcp", cfg.AdminAddr)
	if err != nil {
		_ = grpcLis.Close()
		_ = httpLis.Close()
		return fmt.Errorf("listen admin: %w", err)
	}
	logger.Info("subscriptions started", "grpc_addr", grpcLis.Addr().String(), "http_addr", httpLis.Addr().String(),
		"admin_addr", adminLis.Addr().String())
	if ready != nil {
		ready(addrs{GRPC: grpcLis.Addr().String(), HTTP: httpLis.Addr().String(), Admin: adminLis.Addr().String()})
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return grpcSrv.Serve(gctx, grpcLis, shutdownGrace) })
	g.Go(func() error { return server.ServeHTTP(gctx, httpLis, api, shutdownGrace) })
	g.Go(func() error { return server.ServeHTTP(gctx, adminLis, admin, shutdownGrace) })
	g.Go(func() error { return server.ServePprof(gctx, cfg.PprofAddr, shutdownGrace) })
	g.Go(func() error { return writer.Run(gctx) })
	g.Go(func() error {
		return app.RunRetention(gctx, store, cfg.AttemptRetention, retentionInterval, logger)
	})
	err = g.Wait()
	if derr := nc.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
		logger.Warn("drain nats", "error", derr)
	}
	logger.Info("subscriptions stopped")
	return err
}

// createAccount is the operator CLI: it creates an account and its first admin key in the
// database directly (no running service needed) and prints them.
func createAccount(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("create-account", flag.ContinueOnError)
	fs.SetOutput(stdout)
	name := fs.String("name", "", "account name (required)")
	email := fs.String("admin-email", "", "e-mail of the account's first admin (required)")
	dbURL := fs.String("database-url", "", "PostgreSQL URL (DATABASE_URL, default "+postgres.DefaultURL+")")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("create-account: %w", err)
	}
	*dbURL = envOr(getenv, "DATABASE_URL", postgres.DefaultURL, *dbURL)
	if *name == "" || *email == "" {
		return errors.New("create-account: -name and -admin-email are required")
	}
	pool, err := postgres.Open(ctx, *dbURL, pgstore.Schema, 2)
	if err != nil {
		return fmt.Errorf("create-account: %w", err)
	}
	defer pool.Close()
	if err := pgstore.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("create-account: %w", err)
	}
	svc := storeOnly(pool)
	accountID, err := svc.CreateAccount(ctx, *name)
	if err != nil {
		return fmt.Errorf("create-account: %w", err)
	}
	userID, key, err := svc.CreateAPIKey(ctx, accountID, *email, domain.RoleAdmin)
	if err != nil {
		return fmt.Errorf("create-account: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "account_id=%s\nuser_id=%s\napi_key=%s\n", accountID, userID, key)
	return err
}

// storeOnly is the use cases for the operator CLI: only the store is used, no secrets are
// sealed and nothing is published.
func storeOnly(pool *pgxpool.Pool) *app.Service {
	return app.New(pgstore.New(pool, nil), nil, nil, nil, nil, app.Config{}, nil, slog.New(slog.DiscardHandler))
}

// openCLI parses a CLI subcommand's flags (plus -database-url) and opens its database.
func openCLI(ctx context.Context, fs *flag.FlagSet, args []string, getenv func(string) string) (*pgxpool.Pool, error) {
	dbURL := fs.String("database-url", "", "PostgreSQL URL (DATABASE_URL, default "+postgres.DefaultURL+")")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	pool, err := postgres.Open(ctx, envOr(getenv, "DATABASE_URL", postgres.DefaultURL, *dbURL), pgstore.Schema, 2)
	if err != nil {
		return nil, err
	}
	if err := pgstore.Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// createAPIKey is the operator CLI that issues a key of an account with a name and a role and
// prints it (shown this once).
func createAPIKey(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("create-api-key", flag.ContinueOnError)
	fs.SetOutput(stdout)
	accountID := fs.String("account-id", "", "the account (required)")
	name := fs.String("name", "", "what the key is for, e.g. Zapier (required)")
	role := fs.String("role", string(domain.RoleAdmin), "admin, manager or user")
	pool, err := openCLI(ctx, fs, args, getenv)
	if err != nil {
		return fmt.Errorf("create-api-key: %w", err)
	}
	defer pool.Close()
	k, key, err := storeOnly(pool).IssueAccountAPIKey(ctx, *accountID, *name, domain.Role(*role))
	if err != nil {
		return fmt.Errorf("create-api-key: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "key_id=%s\nrole=%s\napi_key=%s\n", k.ID, k.Role, key)
	return err
}

// revokeAPIKey is the operator CLI that revokes a key; the account's last admin key stays.
func revokeAPIKey(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("revoke-api-key", flag.ContinueOnError)
	fs.SetOutput(stdout)
	accountID := fs.String("account-id", "", "the account (required)")
	id := fs.String("id", "", "the key's id, key_... (required)")
	pool, err := openCLI(ctx, fs, args, getenv)
	if err != nil {
		return fmt.Errorf("revoke-api-key: %w", err)
	}
	defer pool.Close()
	if err := storeOnly(pool).RevokeAccountAPIKey(ctx, *accountID, *id); err != nil {
		return fmt.Errorf("revoke-api-key: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "revoked=%s\n", *id)
	return err
}

// runMigrate is the "migrate" subcommand: it applies the schema migrations and exits. The migrate
// Job runs it before a rollout, so that no pod migrates at start-up (MIGRATE_ON_START=false).
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stdout)
	dbURL := fs.String("database-url", "", "PostgreSQL URL (DATABASE_URL, default "+postgres.DefaultURL+")")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("migrate: unexpected arguments %q", fs.Args())
	}
	pool, err := postgres.Open(ctx, envOr(getenv, "DATABASE_URL", postgres.DefaultURL, *dbURL), pgstore.Schema, 2)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer pool.Close()
	if err := pgstore.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "schema %s migrated\n", pgstore.Schema)
	return err
}
