package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/loginlink"
	"github.com/customertext/webhooks/libs/server"
	"github.com/customertext/webhooks/libs/telemetry"
	"github.com/customertext/webhooks/services/console/internal/session"
	"github.com/customertext/webhooks/services/console/internal/web"
)

const (
	serviceName   = "console"
	shutdownGrace = 10 * time.Second
)

// config is the validated configuration.
type config struct {
	HTTPAddr          string
	AdminAddr         string
	SubscriptionsAddr string
	ServiceToken      string
	LoginLinkKey      []byte
	SessionTTL        time.Duration
	Development       bool
	LogLevel          string
	LogFormat         string
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

func decodeKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("LOGIN_LINK_KEY is not base64: %w", err)
	}
	if len(k) < 32 {
		return nil, errors.New("LOGIN_LINK_KEY must be at least 32 bytes (base64)")
	}
	return k, nil
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet(serviceName, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	var key, ttl, dev string
	fs.StringVar(&cfg.HTTPAddr, "http-addr", envOr(getenv, "HTTP_ADDR", "127.0.0.1:7305"), "console listen address")
	fs.StringVar(&cfg.AdminAddr, "admin-addr", envOr(getenv, "ADMIN_ADDR", "127.0.0.1:7206"), "metrics and health listen address")
	fs.StringVar(&cfg.SubscriptionsAddr, "subscriptions-addr", envOr(getenv, "SUBSCRIPTIONS_ADDR", "127.0.0.1:7104"), "subscription service gRPC address")
	fs.StringVar(&cfg.ServiceToken, "service-token", getenv("SERVICE_TOKEN"), "service credential (mints session API keys)")
	fs.StringVar(&key, "login-link-key", getenv("LOGIN_LINK_KEY"), "base64 HMAC key shared with the backend that mints login links")
	fs.StringVar(&ttl, "session-ttl", envOr(getenv, "SESSION_TTL", "8h"), "how long a session lasts")
	fs.StringVar(&dev, "development", envOr(getenv, "DEVELOPMENT", "false"), "plain-http development: cookies without Secure")
	fs.StringVar(&cfg.LogLevel, "log-level", envOr(getenv, "LOG_LEVEL", "info"), "debug, info, warn, error")
	fs.StringVar(&cfg.LogFormat, "log-format", envOr(getenv, "LOG_FORMAT", "json"), "json or text")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if cfg.ServiceToken == "" {
		return cfg, errors.New("SERVICE_TOKEN is required")
	}
	var err error
	if cfg.LoginLinkKey, err = decodeKey(key); err != nil {
		return cfg, err
	}
	if cfg.SessionTTL, err = time.ParseDuration(ttl); err != nil || cfg.SessionTTL <= 0 {
		return cfg, fmt.Errorf("SESSION_TTL %q is not a positive duration", ttl)
	}
	cfg.Development = dev == "true" || dev == "1"
	return cfg, nil
}

// run is the whole program: `console [flags]` serves; `console login-link -base-url URL
// -account-id ID -email EMAIL -role ROLE [-ttl 5m]` prints a signed login link, as the
// platform's backend mints them.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "login-link" {
		return loginLink(args[1:], getenv, stdout)
	}
	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, stdout)
}

func loginLink(args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("login-link", flag.ContinueOnError)
	fs.SetOutput(stdout)
	base := fs.String("base-url", envOr(getenv, "CONSOLE_URL", "http://127.0.0.1:7305"), "the console's public URL")
	acc := fs.String("account-id", "", "account id")
	email := fs.String("email", "", "the user's email")
	role := fs.String("role", "admin", "admin, manager or user")
	ttl := fs.Duration("ttl", 5*time.Minute, "how long the link is valid (at most 1h)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	key, err := decodeKey(getenv("LOGIN_LINK_KEY"))
	if err != nil {
		return err
	}
	tok, err := loginlink.Sign(key, *acc, *email, *role, *ttl, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s/login?token=%s\n", strings.TrimSuffix(*base, "/"), url.QueryEscape(tok))
	return err
}

func serve(ctx context.Context, cfg config, stdout io.Writer) error {
	logger, err := telemetry.NewLogger(stdout, serviceName, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	tracing, err := telemetry.NewTracing(ctx, serviceName, "dev", "")
	if err != nil {
		return err
	}
	defer tracing.Shutdown(context.Background())
	svc, err := server.DialInternal(cfg.SubscriptionsAddr, cfg.ServiceToken, tracing)
	if err != nil {
		return err
	}
	defer svc.Close()
	// Calls as the signed-in user carry the session's own API key, set per request.
	user, err := grpc.NewClient(cfg.SubscriptionsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial %s: %w", cfg.SubscriptionsAddr, err)
	}
	defer user.Close()

	front, err := web.New(web.Config{
		Logger:        logger,
		Webhooks:      webhooksv1.NewWebhookServiceClient(user),
		Accounts:      webhooksv1.NewAccountServiceClient(svc),
		Redeemer:      loginlink.NewRedeemer(cfg.LoginLinkKey),
		Sessions:      session.NewStore(cfg.SessionTTL),
		SecureCookies: !cfg.Development,
	})
	if err != nil {
		return err
	}
	reg := telemetry.NewRegistry()
	admin := server.NewAdmin(reg, logger, map[string]server.Check{
		"subscriptions": func(ctx context.Context) error {
			_, err := healthpb.NewHealthClient(svc).Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		},
	})
	httpLis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	adminLis, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		httpLis.Close()
		return fmt.Errorf("listen %s: %w", cfg.AdminAddr, err)
	}
	logger.Info("console serving", "http_addr", httpLis.Addr().String(), "admin_addr", adminLis.Addr().String(),
		"development", cfg.Development)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return server.ServeHTTP(gctx, httpLis, front.Handler(), shutdownGrace) })
	g.Go(func() error { return server.ServeHTTP(gctx, adminLis, admin, shutdownGrace) })
	return g.Wait()
}
