package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/customertext/webhooks/libs/postgres"
)

// maxSendConcurrency bounds SEND_CONCURRENCY.
const maxSendConcurrency = 256

// config is the validated configuration of the service.
type config struct {
	NATSURL         string
	DatabaseURL     string
	GRPCAddr        string
	AdminAddr       string
	ContactsAddr    string
	ServiceToken    string
	OTLPEndpoint    string
	LogLevel        string
	LogFormat       string
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
	str(&c.NATSURL, "nats-url", "NATS_URL", "nats://127.0.0.1:4222", "NATS server URL")
	str(&c.DatabaseURL, "database-url", "DATABASE_URL", postgres.DefaultURL, "PostgreSQL URL")
	str(&c.GRPCAddr, "grpc-addr", "GRPC_ADDR", "127.0.0.1:7103", "gRPC listen address")
	str(&c.AdminAddr, "admin-addr", "ADMIN_ADDR", "127.0.0.1:7203", "admin HTTP listen address (/metrics, /healthz, /readyz)")
	str(&c.ContactsAddr, "contacts-addr", "CONTACTS_ADDR", "127.0.0.1:7101", "contacts service gRPC address")
	str(&c.ServiceToken, "service-token", "SERVICE_TOKEN", "", "service credential (required)")
	str(&c.OTLPEndpoint, "otlp-endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP/gRPC endpoint; empty disables export")
	str(&c.LogLevel, "log-level", "LOG_LEVEL", "info", "log level")
	str(&c.LogFormat, "log-format", "LOG_FORMAT", "json", "log format: json or text")
	var conc string
	str(&conc, "send-concurrency", "SEND_CONCURRENCY", "8", "provider calls in flight per campaign")
	if err := fs.Parse(args); err != nil {
		return config{}, fmt.Errorf("parse flags: %w", err)
	}
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
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: want host:port", name, addr))
		}
	}
	if c.NATSURL == "" {
		errs = append(errs, errors.New("NATS_URL is required"))
	}
	return errors.Join(errs...)
}
