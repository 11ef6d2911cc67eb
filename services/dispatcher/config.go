package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"time"

	"github.com/customertext/webhooks/libs/server"
	"github.com/customertext/webhooks/libs/ssrf"
	"github.com/customertext/webhooks/services/dispatcher/internal/retry"
)

// defaultNATSURL is the development NATS server.
const defaultNATSURL = "nats://127.0.0.1:4222"

// version is the release stamped into the binary by the image build (-ldflags "-X
// main.version=..."); it is the default of the User-Agent version.
var version = "dev"

// config is the dispatcher's validated configuration.
type config struct {
	NATSURL           string
	AdminAddr         string
	ServiceToken      string
	OTLPEndpoint      string
	LogLevel          string
	LogFormat         string
	SubscriptionsAddr string
	SSRFAllow         []netip.Prefix
	Concurrency       int
	BulkConcurrency   int
	BulkTarget        time.Duration
	BulkMin           int
	PerEndpoint       int
	DeliveryTimeout   time.Duration
	ShutdownTimeout   time.Duration
	ResyncInterval    time.Duration
	Version           string
	RetrySchedule     []time.Duration
	AckWait           time.Duration
	CircuitFailures   int
	CircuitOpenFor    time.Duration
	StreamReplicas    int
	BulkRate          float64
	BulkBurst         int
	// PprofAddr is the loopback address of the /debug/pprof listener; empty serves no profiles.
	PprofAddr string
}

// parseConfig reads flags, falling back to the environment, then to defaults.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("dispatcher", flag.ContinueOnError)
	fs.SetOutput(out)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	// Settings that may hold credentials take their environment fallback after parsing, so that
	// the usage text printed on a flag error never shows them.
	natsURL := fs.String("nats-url", "", "NATS server URL (env NATS_URL, default "+defaultNATSURL+")")
	adminAddr := fs.String("admin-addr", env("ADMIN_ADDR", "127.0.0.1:7205"), "admin HTTP address (/metrics, /healthz, /readyz)")
	token := fs.String("service-token", "", "service credential for WebhookConfigService (env SERVICE_TOKEN, required)")
	otlp := fs.String("otlp-endpoint", env("OTEL_EXPORTER_OTLP_ENDPOINT", ""), "OTLP/gRPC endpoint; empty disables export")
	logLevel := fs.String("log-level", env("LOG_LEVEL", "info"), "log level")
	logFormat := fs.String("log-format", env("LOG_FORMAT", "json"), "log format: json or text")
	subs := fs.String("subscriptions-addr", env("SUBSCRIPTIONS_ADDR", "127.0.0.1:7104"), "subscription service gRPC address")
	allow := fs.String("ssrf-allow", env("SSRF_ALLOW", ""), "comma-separated CIDRs exempt from the SSRF guard (development and tests)")
	conc := fs.String("concurrency", env("CONCURRENCY", "256"), "deliveries in flight per replica from the default lane")
	bulkConc := fs.String("bulk-concurrency", env("BULK_CONCURRENCY", ""), "deliveries in flight per replica from the bulk lane, on top of CONCURRENCY (default: CONCURRENCY)")
	bulkTarget := fs.String("bulk-latency-target", env("BULK_LATENCY_TARGET", "50ms"), "the bulk lane backs off while more than 5% of the default lane's jobs are picked up later than this after their event")
	bulkMin := fs.String("bulk-min-concurrency", env("BULK_MIN_CONCURRENCY", "4"), "the bulk lane's concurrency never backs off below this")
	perEndpoint := fs.String("per-endpoint-concurrency", env("PER_ENDPOINT_CONCURRENCY", "32"), "deliveries in flight per endpoint per replica")
	timeout := fs.String("delivery-timeout", env("DELIVERY_TIMEOUT", "10s"), "default timeout of one attempt")
	shutdown := fs.String("shutdown-timeout", env("SHUTDOWN_TIMEOUT", "25s"), "how long shutdown may take")
	resync := fs.String("resync-interval", env("RESYNC_INTERVAL", "30s"), "period of the full webhook resync")
	versionFlag := fs.String("version", env("VERSION", version), "version sent in the User-Agent")
	pprofAddr := fs.String("pprof-addr", env("PPROF_ADDR", ""), "loopback address serving /debug/pprof; empty serves none")
	schedule := fs.String("retry-schedule", env("RETRY_SCHEDULE", "0s,5s,5m,30m,2h,5h,10h,10h"), "delay before each attempt; the count is the number of attempts")
	ackWait := fs.String("ack-wait", env("ACK_WAIT", "60s"), "AckWait of the delivery consumer; must exceed the delivery timeout")
	cbFailures := fs.String("circuit-failures", env("CIRCUIT_FAILURES", "5"), "consecutive endpoint failures that open its circuit")
	cbOpen := fs.String("circuit-open-for", env("CIRCUIT_OPEN_FOR", "10s"), "how long an open circuit waits before a probe (doubles per failed probe)")
	replicas := fs.String("stream-replicas", env("STREAM_REPLICAS", "1"), "JetStream stream replicas (3 in a cluster)")
	bulkRate := fs.String("fair-share-rate", env("FAIR_SHARE_RATE", "200"), "jobs per second per account before its jobs go to the bulk lane")
	bulkBurst := fs.String("fair-share-burst", env("FAIR_SHARE_BURST", "1000"), "burst of jobs per account before its jobs go to the bulk lane")
	if err := fs.Parse(args); err != nil {
		return config{}, fmt.Errorf("parse flags: %w", err)
	}
	if *natsURL == "" {
		*natsURL = env("NATS_URL", defaultNATSURL)
	}
	if *token == "" {
		*token = getenv("SERVICE_TOKEN")
	}

	cfg := config{NATSURL: *natsURL, AdminAddr: *adminAddr, ServiceToken: *token, OTLPEndpoint: *otlp,
		LogLevel: *logLevel, LogFormat: *logFormat, SubscriptionsAddr: *subs, Version: *versionFlag,
		PprofAddr: *pprofAddr}
	var errs []error
	var err error
	if cfg.ServiceToken == "" {
		errs = append(errs, errors.New("SERVICE_TOKEN (-service-token) is required"))
	}
	if cfg.PprofAddr != "" {
		if err := server.CheckLoopback(cfg.PprofAddr); err != nil {
			errs = append(errs, fmt.Errorf("PPROF_ADDR: %w", err))
		}
	}
	if cfg.SSRFAllow, err = ssrf.ParseAllowList(*allow); err != nil {
		errs = append(errs, fmt.Errorf("SSRF_ALLOW: %w", err))
	}
	intVar := func(name, v string, lo int, dst *int) {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo {
			errs = append(errs, fmt.Errorf("%s: want an integer >= %d, got %q", name, lo, v))
			return
		}
		*dst = n
	}
	durVar := func(name, v string, lo time.Duration, dst *time.Duration) {
		d, err := time.ParseDuration(v)
		if err != nil || d < lo {
			errs = append(errs, fmt.Errorf("%s: want a duration >= %s, got %q", name, lo, v))
			return
		}
		*dst = d
	}
	intVar("CONCURRENCY", *conc, 1, &cfg.Concurrency)
	if *bulkConc == "" {
		cfg.BulkConcurrency = cfg.Concurrency
	} else {
		intVar("BULK_CONCURRENCY", *bulkConc, 1, &cfg.BulkConcurrency)
	}
	intVar("BULK_MIN_CONCURRENCY", *bulkMin, 1, &cfg.BulkMin)
	durVar("BULK_LATENCY_TARGET", *bulkTarget, time.Millisecond, &cfg.BulkTarget)
	intVar("PER_ENDPOINT_CONCURRENCY", *perEndpoint, 1, &cfg.PerEndpoint)
	intVar("CIRCUIT_FAILURES", *cbFailures, 1, &cfg.CircuitFailures)
	intVar("STREAM_REPLICAS", *replicas, 1, &cfg.StreamReplicas)
	intVar("FAIR_SHARE_BURST", *bulkBurst, 1, &cfg.BulkBurst)
	durVar("DELIVERY_TIMEOUT", *timeout, 100*time.Millisecond, &cfg.DeliveryTimeout)
	durVar("SHUTDOWN_TIMEOUT", *shutdown, time.Second, &cfg.ShutdownTimeout)
	durVar("RESYNC_INTERVAL", *resync, 100*time.Millisecond, &cfg.ResyncInterval)
	durVar("ACK_WAIT", *ackWait, time.Second, &cfg.AckWait)
	durVar("CIRCUIT_OPEN_FOR", *cbOpen, 100*time.Millisecond, &cfg.CircuitOpenFor)
	if r, err := strconv.ParseFloat(*bulkRate, 64); err != nil || r <= 0 {
		errs = append(errs, fmt.Errorf("FAIR_SHARE_RATE: want a positive number, got %q", *bulkRate))
	} else {
		cfg.BulkRate = r
	}
	if cfg.RetrySchedule, err = retry.ParseSchedule(*schedule); err != nil {
		errs = append(errs, fmt.Errorf("RETRY_SCHEDULE: %w", err))
	}
	if cfg.AckWait != 0 && cfg.DeliveryTimeout != 0 && cfg.AckWait <= cfg.DeliveryTimeout+time.Second {
		errs = append(errs, fmt.Errorf("ACK_WAIT (%s) must exceed DELIVERY_TIMEOUT (%s) by more than 1s", cfg.AckWait, cfg.DeliveryTimeout))
	}
	if len(errs) > 0 {
		return config{}, fmt.Errorf("invalid configuration: %w", errors.Join(errs...))
	}
	return cfg, nil
}
