package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/libs/secrets"
	"github.com/customertext/webhooks/libs/ssrf"
)

// config is the validated service configuration.
type config struct {
	GRPCAddr          string
	HTTPAddr          string
	CORSOrigins       []string
	AdminAddr         string
	NATSURL           string
	DatabaseURL       string
	ServiceToken      string
	OTLPEndpoint      string
	LogLevel          string
	LogFormat         string
	Keys              *secrets.Keyring
	AllowInsecureHTTP bool
	SSRFAllow         []netip.Prefix
	AutoDisableAfter  time.Duration
	AttemptRetention  time.Duration
	UserAgentVersion  string
	// MaxWebhooksPerAccount limits each account's webhooks.
	MaxWebhooksPerAccount int
}

type getenvFunc func(string) string

func envOr(getenv getenvFunc, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// parseConfig reads flags, falling back to the environment, then to defaults.
func parseConfig(args []string, getenv getenvFunc, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("subscriptions", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg                   config
		keys, ssrfAllow       string
		insecure, autoDisable string
		retention, cors       string
		maxWebhooks           string
	)
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", envOr(getenv, "GRPC_ADDR", "127.0.0.1:7104"), "gRPC listen address (GRPC_ADDR)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", envOr(getenv, "HTTP_ADDR", "127.0.0.1:7304"), "public HTTP/JSON API listen address (HTTP_ADDR)")
	fs.StringVar(&cors, "cors-origins", getenv("CORS_ORIGINS"), "comma-separated origins browsers may call the HTTP API from; empty: CORS off (CORS_ORIGINS)")
	fs.StringVar(&cfg.AdminAddr, "admin-addr", envOr(getenv, "ADMIN_ADDR", "127.0.0.1:7204"), "admin HTTP listen address (ADMIN_ADDR)")
	fs.StringVar(&cfg.NATSURL, "nats-url", envOr(getenv, "NATS_URL", "nats://127.0.0.1:4222"), "NATS URL (NATS_URL)")
	fs.StringVar(&cfg.DatabaseURL, "database-url", envOr(getenv, "DATABASE_URL", postgres.DefaultURL), "PostgreSQL URL (DATABASE_URL)")
	fs.StringVar(&cfg.ServiceToken, "service-token", getenv("SERVICE_TOKEN"), "service credential of internal callers (SERVICE_TOKEN, required)")
	fs.StringVar(&cfg.OTLPEndpoint, "otlp-endpoint", getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "OTLP/gRPC endpoint host:port (OTEL_EXPORTER_OTLP_ENDPOINT)")
	fs.StringVar(&cfg.LogLevel, "log-level", envOr(getenv, "LOG_LEVEL", "info"), "log level (LOG_LEVEL)")
	fs.StringVar(&cfg.LogFormat, "log-format", envOr(getenv, "LOG_FORMAT", "json"), "log format json|text (LOG_FORMAT)")
	fs.StringVar(&keys, "secrets-keys", getenv("SECRETS_KEYS"), "encryption keys <id>:<base64 32 bytes>[,<older-id>:<base64>] (SECRETS_KEYS, required)")
	fs.StringVar(&insecure, "allow-insecure-http", envOr(getenv, "ALLOW_INSECURE_HTTP", "false"), "accept http:// webhook URLs, development only (ALLOW_INSECURE_HTTP)")
	fs.StringVar(&ssrfAllow, "ssrf-allow", getenv("SSRF_ALLOW"), "comma-separated CIDRs test events may reach despite the SSRF guard (SSRF_ALLOW)")
	fs.StringVar(&autoDisable, "auto-disable-after", envOr(getenv, "AUTO_DISABLE_AFTER", "120h"), "disable a webhook failing without success this long; 0 never (AUTO_DISABLE_AFTER)")
	fs.StringVar(&retention, "attempt-retention", envOr(getenv, "ATTEMPT_RETENTION", "720h"), "how long delivery attempts are kept (ATTEMPT_RETENTION)")
	fs.StringVar(&cfg.UserAgentVersion, "user-agent-version", envOr(getenv, "USER_AGENT_VERSION", "dev"), "version in the User-Agent of test events (USER_AGENT_VERSION)")
	fs.StringVar(&maxWebhooks, "max-webhooks-per-account", envOr(getenv, "MAX_WEBHOOKS_PER_ACCOUNT", "100"), "most webhooks one account may have (MAX_WEBHOOKS_PER_ACCOUNT)")
	if err := fs.Parse(args); err != nil {
		return config{}, fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var errs []error
	if cfg.ServiceToken == "" {
		errs = append(errs, errors.New("SERVICE_TOKEN (-service-token) is required"))
	}
	if keys == "" {
		errs = append(errs, errors.New("SECRETS_KEYS (-secrets-keys) is required"))
	} else {
		kr, err := secrets.ParseKeys(keys)
		if err != nil {
			errs = append(errs, fmt.Errorf("SECRETS_KEYS: %w", err))
		}
		cfg.Keys = kr
	}
	b, err := strconv.ParseBool(insecure)
	if err != nil {
		errs = append(errs, fmt.Errorf("ALLOW_INSECURE_HTTP: want true or false, got %q", insecure))
	}
	cfg.AllowInsecureHTTP = b
	if cfg.SSRFAllow, err = ssrf.ParseAllowList(ssrfAllow); err != nil {
		errs = append(errs, fmt.Errorf("SSRF_ALLOW: %w", err))
	}
	if cfg.AutoDisableAfter, err = time.ParseDuration(autoDisable); err != nil || cfg.AutoDisableAfter < 0 {
		errs = append(errs, fmt.Errorf("AUTO_DISABLE_AFTER: want a non-negative duration such as 120h, got %q", autoDisable))
	}
	if cfg.AttemptRetention, err = time.ParseDuration(retention); err != nil || cfg.AttemptRetention < 24*time.Hour {
		errs = append(errs, fmt.Errorf("ATTEMPT_RETENTION: want a duration of at least 24h, got %q", retention))
	}
	for _, o := range strings.Split(cors, ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
			errs = append(errs, fmt.Errorf("CORS_ORIGINS: want origins such as https://app.example.com, got %q", o))
			continue
		}
		cfg.CORSOrigins = append(cfg.CORSOrigins, o)
	}
	if cfg.MaxWebhooksPerAccount, err = strconv.Atoi(maxWebhooks); err != nil || cfg.MaxWebhooksPerAccount < 1 {
		errs = append(errs, fmt.Errorf("MAX_WEBHOOKS_PER_ACCOUNT: want a whole number of at least 1, got %q", maxWebhooks))
	}
	if err := errors.Join(errs...); err != nil {
		return config{}, fmt.Errorf("invalid configuration: %w", err)
	}
	return cfg, nil
}
