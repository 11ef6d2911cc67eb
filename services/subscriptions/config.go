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
	"github.com/customertext/webhooks/libs/server"
	"github.com/customertext/webhooks/libs/ssrf"
)

// defaultNATSURL is the development NATS server.
const defaultNATSURL = "nats://127.0.0.1:4222"

// version is the release stamped into the binary by the image build (-ldflags "-X
// main.version=..."); it is the default of the User-Agent version.
var version = "dev"

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
	// PprofAddr is the loopback address of the /debug/pprof listener; empty (the default) serves
	// no profiles.
	PprofAddr string
	// Migrate applies the schema migrations at start-up (MIGRATE_ON_START, default true); off
	// where a migrate Job runs them before a rollout.
	Migrate bool
}

type getenvFunc func(string) string

// envOr returns the first non-empty of flagged (a flag's value, when given), the environment
// variable name, and def.
func envOr(getenv getenvFunc, name, def string, flagged ...string) string {
	for _, v := range flagged {
		if v != "" {
			return v
		}
	}
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
	// Settings that may hold credentials take their environment fallback after parsing, so that
	// the usage text printed on a flag error never shows them.
	fs.StringVar(&cfg.NATSURL, "nats-url", "", "NATS URL (NATS_URL, default "+defaultNATSURL+")")
	fs.StringVar(&cfg.DatabaseURL, "database-url", "", "PostgreSQL URL (DATABASE_URL, default "+postgres.DefaultURL+")")
	fs.StringVar(&cfg.ServiceToken, "service-token", "", "service credential of internal callers (SERVICE_TOKEN, required)")
	fs.StringVar(&cfg.OTLPEndpoint, "otlp-endpoint", getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "OTLP/gRPC endpoint host:port (OTEL_EXPORTER_OTLP_ENDPOINT)")
	fs.StringVar(&cfg.LogLevel, "log-level", envOr(getenv, "LOG_LEVEL", "info"), "log level (LOG_LEVEL)")
	fs.StringVar(&cfg.LogFormat, "log-format", envOr(getenv, "LOG_FORMAT", "json"), "log format json|text (LOG_FORMAT)")
	fs.StringVar(&keys, "secrets-keys", "", "encryption keys <id>:<base64 32 bytes>[,<older-id>:<base64>] (SECRETS_KEYS, required)")
	fs.StringVar(&insecure, "allow-insecure-http", envOr(getenv, "ALLOW_INSECURE_HTTP", "false"), "accept http:// webhook URLs, development only (ALLOW_INSECURE_HTTP)")
	fs.StringVar(&ssrfAllow, "ssrf-allow", getenv("SSRF_ALLOW"), "comma-separated CIDRs test events may reach despite the SSRF guard (SSRF_ALLOW)")
	fs.StringVar(&autoDisable, "auto-disable-after", envOr(getenv, "AUTO_DISABLE_AFTER", "120h"), "disable a webhook failing without success this long; 0 never (AUTO_DISABLE_AFTER)")
	fs.StringVar(&retention, "attempt-retention", envOr(getenv, "ATTEMPT_RETENTION", "720h"), "how long delivery attempts are kept (ATTEMPT_RETENTION)")
	fs.StringVar(&maxWebhooks, "max-webhooks-per-account", envOr(getenv, "MAX_WEBHOOKS_PER_ACCOUNT", "100"), "most webhooks one account may have (MAX_WEBHOOKS_PER_ACCOUNT)")
	fs.StringVar(&cfg.UserAgentVersion, "user-agent-version", envOr(getenv, "USER_AGENT_VERSION", version), "version in the User-Agent of test events (USER_AGENT_VERSION)")
	fs.StringVar(&cfg.PprofAddr, "pprof-addr", getenv("PPROF_ADDR"), "loopback address serving /debug/pprof; empty serves none (PPROF_ADDR)")
	migrate := fs.String("migrate-on-start", envOr(getenv, "MIGRATE_ON_START", "true"), "apply schema migrations at start-up; false where a migrate Job runs them (MIGRATE_ON_START)")
	if err := fs.Parse(args); err != nil {
		return config{}, fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.NATSURL = envOr(getenv, "NATS_URL", defaultNATSURL, cfg.NATSURL)
	cfg.DatabaseURL = envOr(getenv, "DATABASE_URL", postgres.DefaultURL, cfg.DatabaseURL)
	cfg.ServiceToken = envOr(getenv, "SERVICE_TOKEN", "", cfg.ServiceToken)
	keys = envOr(getenv, "SECRETS_KEYS", "", keys)
	var errs []error
	if cfg.PprofAddr != "" {
		if err := server.CheckLoopback(cfg.PprofAddr); err != nil {
			errs = append(errs, fmt.Errorf("PPROF_ADDR: %w", err))
		}
	}
	if m, err := strconv.ParseBool(*migrate); err != nil {
		errs = append(errs, fmt.Errorf("MIGRATE_ON_START: want true or false, got %q", *migrate))
	} else {
		cfg.Migrate = m
	}
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
