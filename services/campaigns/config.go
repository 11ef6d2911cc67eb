package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/libs/server"
)

// maxSendConcurrency bounds SEND_CONCURRENCY.
const maxSendConcurrency = 256

// config is the validated configuration of the service.
type config struct {
	NATSURL      string
	DatabaseURL  string
	GRPCAddr     string
	AdminAddr    string
	ContactsAddr string
	ServiceToken string
	OTLPEndpoint string
	LogLevel     string
	LogFormat    string
	// PprofAddr is the loopback address of the /debug/pprof listener; empty serves no profiles.
	PprofAddr string
	// Migrate applies the schema migrations at start-up (MIGRATE_ON_START, default true); off
	// where a migrate Job runs them before a rollout.
	Migrate         bool
	SendConcurrency int
}

// parseConfig reads flags, falling back to the environment, then to the defaults.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("campaigns", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	str := func(p *string, name, env, def, usage string) {
		if v := getenv(env); v != "" {
			def = v
		}
		fs.StringVar(p, name, def, usage+" (env "+env+")")
	}
	// Settings that may hold credentials take their environment fallback after parsing, so that
	// the usage text printed on a flag error never shows them.
	type fallback struct {
		p        *string
		env, def string
	}
	var secret []fallback
	secretStr := func(p *string, name, env, def, usage string) {
		if def != "" {
			usage += ", default " + def
		}
		fs.StringVar(p, name, "", usage+" (env "+env+")")
		secret = append(secret, fallback{p, env, def})
	}
	secretStr(&c.NATSURL, "nats-url", "NATS_URL", "nats://127.0.0.1:4222", "NATS server URL")
	secretStr(&c.DatabaseURL, "database-url", "DATABASE_URL", postgres.DefaultURL, "PostgreSQL URL")
	str(&c.GRPCAddr, "grpc-addr", "GRPC_ADDR", "127.0.0.1:7103", "gRPC listen address")
	str(&c.AdminAddr, "admin-addr", "ADMIN_ADDR", "127.0.0.1:7203", "admin HTTP listen address (/metrics, /healthz, /readyz)")
	str(&c.ContactsAddr, "contacts-addr", "CONTACTS_ADDR", "127.0.0.1:7101", "contacts service gRPC address")
	secretStr(&c.ServiceToken, "service-token", "SERVICE_TOKEN", "", "service credential (required)")
	str(&c.OTLPEndpoint, "otlp-endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP/gRPC endpoint; empty disables export")
	str(&c.LogLevel, "log-level", "LOG_LEVEL", "info", "log level")
	str(&c.LogFormat, "log-format", "LOG_FORMAT", "json", "log format: json or text")
	var conc string
	str(&conc, "send-concurrency", "SEND_CONCURRENCY", "8", "provider calls in flight per campaign")
	str(&c.PprofAddr, "pprof-addr", "PPROF_ADDR", "", "loopback address serving /debug/pprof; empty serves none")
	var migrate string
	str(&migrate, "migrate-on-start", "MIGRATE_ON_START", "true", "apply schema migrations at start-up; false where a migrate Job runs them")
	if err := fs.Parse(args); err != nil {
		return config{}, fmt.Errorf("parse flags: %w", err)
	}
	for _, f := range secret {
		if *f.p == "" {
			*f.p = getenv(f.env)
		}
		if *f.p == "" {
			*f.p = f.def
		}
	}
	m, err := strconv.ParseBool(migrate)
	if err != nil {
		return config{}, fmt.Errorf("MIGRATE_ON_START %q: want true or false", migrate)
	}
	c.Migrate = m
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	n, err := strconv.Atoi(conc)
	if err != nil || n < 1 || n > maxSendConcurrency {
		return config{}, fmt.Errorf("SEND_CONCURRENCY %q: want an integer from 1 to %d", conc, maxSendConcurrency)
	}
	c.SendConcurrency = n
	return c, c.validate()
}

func (c config) validate() error {
	var errs []error
	if c.ServiceToken == "" {
		errs = append(errs, errors.New("SERVICE_TOKEN (-service-token) is required"))
	}
	for name, addr := range map[string]string{"GRPC_ADDR": c.GRPCAddr, "ADMIN_ADDR": c.AdminAddr, "CONTACTS_ADDR": c.ContactsAddr} {
		// A gRPC target may name its resolver: dns:///contacts-headless:7101 in Kubernetes.
		if _, _, err := net.SplitHostPort(strings.TrimPrefix(addr, "dns:///")); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: want host:port", name, addr))
		}
	}
	if c.NATSURL == "" {
		errs = append(errs, errors.New("NATS_URL is required"))
	}
	if c.PprofAddr != "" {
		if err := server.CheckLoopback(c.PprofAddr); err != nil {
			errs = append(errs, fmt.Errorf("PPROF_ADDR: %w", err))
		}
	}
	return errors.Join(errs...)
}
