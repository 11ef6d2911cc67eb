package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"

	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/libs/secrets"
)

// config is the validated configuration of the service.
type config struct {
	NATSURL       string
	DatabaseURL   string
	GRPCAddr      string
	AdminAddr     string
	HTTPAddr      string
	PublicBaseURL string
	ContactsAddr  string
	ServiceToken  string
	OTLPEndpoint  string
	LogLevel      string
	LogFormat     string
	// Keys encrypt carrier tokens at rest (SECRETS_KEYS, required).
	Keys *secrets.Keyring
}

// parseConfig reads flags, falling back to the environment, then to the defaults.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("messaging", flag.ContinueOnError)
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
	str(&c.GRPCAddr, "grpc-addr", "GRPC_ADDR", "127.0.0.1:7102", "gRPC listen address")
	str(&c.AdminAddr, "admin-addr", "ADMIN_ADDR", "127.0.0.1:7202", "admin HTTP listen address (/metrics, /healthz, /readyz)")
	str(&c.HTTPAddr, "http-addr", "HTTP_ADDR", "127.0.0.1:7302", "inbound SMS HTTP listen address")
	str(&c.PublicBaseURL, "public-base-url", "PUBLIC_BASE_URL", "http://127.0.0.1:7302", "URL carriers call, without the path; signatures cover it")
	str(&c.ContactsAddr, "contacts-addr", "CONTACTS_ADDR", "127.0.0.1:7101", "contacts service gRPC address")
	str(&c.ServiceToken, "service-token", "SERVICE_TOKEN", "", "service credential (required)")
	str(&c.OTLPEndpoint, "otlp-endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP/gRPC endpoint; empty disables export")
	str(&c.LogLevel, "log-level", "LOG_LEVEL", "info", "log level")
	str(&c.LogFormat, "log-format", "LOG_FORMAT", "json", "log format: json or text")
	var keys string
	str(&keys, "secrets-keys", "SECRETS_KEYS", "", "keys encrypting carrier tokens at rest (required): <id>:<base64 32 bytes>[,<older-id>:<base64>]; first encrypts")
	if err := fs.Parse(args); err != nil {
		return config{}, fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	kr, err := secrets.ParseKeys(keys)
	if err != nil {
		return config{}, fmt.Errorf("SECRETS_KEYS: %w", err)
	}
	c.Keys = kr
	return c, c.validate()
}

func (c config) validate() error {
	var errs []error
	if c.ServiceToken == "" {
		errs = append(errs, errors.New("SERVICE_TOKEN (-service-token) is required"))
	}
	for name, addr := range map[string]string{"GRPC_ADDR": c.GRPCAddr, "ADMIN_ADDR": c.AdminAddr, "HTTP_ADDR": c.HTTPAddr, "CONTACTS_ADDR": c.ContactsAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: want host:port", name, addr))
		}
	}
	u, err := url.Parse(c.PublicBaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.TrimRight(u.Path, "/") != "" || u.RawQuery != "" {
		errs = append(errs, fmt.Errorf("PUBLIC_BASE_URL %q: want scheme://host[:port] without a path", c.PublicBaseURL))
	}
	if c.NATSURL == "" {
		errs = append(errs, errors.New("NATS_URL is required"))
	}
	return errors.Join(errs...)
}
