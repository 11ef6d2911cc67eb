package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/customertext/webhooks/libs/event"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	"github.com/customertext/webhooks/libs/natsserver"
	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/libs/streams"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	defaults := config{
		NATSURL: "nats://127.0.0.1:4222", DatabaseURL: postgres.DefaultURL, GRPCAddr: "127.0.0.1:7101",
		AdminAddr: "127.0.0.1:7201", ServiceToken: "tok", LogLevel: "info", LogFormat: "json", ShutdownGrace: 10 * time.Second,
		Migrate: true,
	}
	tests := []struct {
		name    string
		args    []string
		getenv  func(string) string
		want    func(c config) config
		wantErr string
	}{
		{name: "defaults", getenv: env("SERVICE_TOKEN", "tok"), want: func(c config) config { return c }},
		{
			name:   "environment",
			getenv: env("SERVICE_TOKEN", "tok", "NATS_URL", "nats://n:1", "DATABASE_URL", "postgres://db", "GRPC_ADDR", ":1", "ADMIN_ADDR", ":2", "OTEL_EXPORTER_OTLP_ENDPOINT", "otel:4317", "LOG_LEVEL", "debug", "LOG_FORMAT", "text"),
			want: func(c config) config {
				c.NATSURL, c.DatabaseURL, c.GRPCAddr, c.AdminAddr, c.OTLPEndpoint, c.LogLevel, c.LogFormat = "nats://n:1", "postgres://db", ":1", ":2", "otel:4317", "debug", "text"
				return c
			},
		},
		{
			name:   "flags win over the environment",
			args:   []string{"-grpc-addr", ":9", "-service-token", "flagtok"},
			getenv: env("SERVICE_TOKEN", "tok", "GRPC_ADDR", ":1"),
			want: func(c config) config {
				c.GRPCAddr, c.ServiceToken = ":9", "flagtok"
				return c
			},
		},
		{name: "token required", getenv: env(), wantErr: "SERVICE_TOKEN"},
		{name: "unknown flag", args: []string{"-nope"}, getenv: env("SERVICE_TOKEN", "tok"), wantErr: "nope"},
		{name: "pprof on a public address", args: []string{"-pprof-addr", "0.0.0.0:6060"}, getenv: env("SERVICE_TOKEN", "tok"), wantErr: "PPROF_ADDR"},
		{name: "stray argument", args: []string{"serve"}, getenv: env("SERVICE_TOKEN", "tok"), wantErr: "unexpected arguments"},
		{name: "bad grace", args: []string{"-shutdown-grace", "0s"}, getenv: env("SERVICE_TOKEN", "tok"), wantErr: "shutdown-grace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseConfig(tt.args, tt.getenv, &bytes.Buffer{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseConfig error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			if diff := cmp.Diff(tt.want(defaults), got); diff != "" {
				t.Errorf("config mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUsageNeverShowsSecrets(t *testing.T) {
	t.Parallel()
	getenv := func(k string) string {
		return map[string]string{"SERVICE_TOKEN": "tok-s3cret", "DATABASE_URL": "postgres://u:pw-s3cret@db/x",
			"NATS_URL": "nats://u:nats-s3cret@n:4222"}[k]
	}
	for _, args := range [][]string{{"-h"}, {"-nope"}, {"import", "-h"}, {"import", "-nope"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, getenv, &out); err == nil {
			t.Errorf("run %v: got nil error, want a flag error", args)
		}
		if !strings.Contains(out.String(), "Usage") {
			t.Errorf("run %v printed %q, want the usage", args, out.String())
		}
		if strings.Contains(out.String(), "s3cret") {
			t.Errorf("run %v usage shows a secret:\n%s", args, out.String())
		}
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"no token", map[string]string{}, "SERVICE_TOKEN"},
		{"bad log level", map[string]string{"SERVICE_TOKEN": "x", "LOG_LEVEL": "loud"}, "log level"},
		{"bad log format", map[string]string{"SERVICE_TOKEN": "x", "LOG_FORMAT": "xml"}, "log format"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), nil, func(k string) string { return tt.env[k] }, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("run error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestStartsWhileNATSIsDown checks that the API works before NATS is reachable and that the
// event made meanwhile is published once NATS comes up.
func TestStartsWhileNATSIsDown(t *testing.T) {
	_, portStr, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatalf("split: %v", err)
	}
	port, _ := strconv.Atoi(portStr)
	svc := startService(t, fmt.Sprintf("nats://127.0.0.1:%d", port))
	c := mustCreate(t, svc, &contactsv1.Contact{FirstName: "Early", Phone: "+15551234567"})

	ns, err := natsserver.Start(natsserver.Options{Port: port, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	t.Cleanup(ns.Shutdown)
	got := svc.readEvents(t, streams.EventSubject(account, event.NewContact)).next()
	if got.Data["contact_id"] != c.GetId() || got.Data["first_name"] != "Early" {
		t.Errorf("event data = %v, want new_contact for %s", got.Data, c.GetId())
	}
}
