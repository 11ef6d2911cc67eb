package main

import (
	"strings"
	"testing"
)

const testKeys = "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

func TestConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
	}{
		{"no token", map[string]string{"SECRETS_KEYS": testKeys}, nil, "SERVICE_TOKEN"},
		{"no secrets keys", map[string]string{"SERVICE_TOKEN": "x"}, nil, "SECRETS_KEYS"},
		{"public url with path", map[string]string{"SERVICE_TOKEN": "x", "SECRETS_KEYS": testKeys, "PUBLIC_BASE_URL": "https://h/sms"}, nil, "PUBLIC_BASE_URL"},
		{"public url without scheme", map[string]string{"SERVICE_TOKEN": "x", "SECRETS_KEYS": testKeys, "PUBLIC_BASE_URL": "h:80"}, nil, "PUBLIC_BASE_URL"},
		{"bad secrets keys", map[string]string{"SERVICE_TOKEN": "x", "SECRETS_KEYS": "k1:short"}, nil, "SECRETS_KEYS"},
		{"bad address", map[string]string{"SERVICE_TOKEN": "x", "SECRETS_KEYS": testKeys}, []string{"-http-addr", "nope"}, "HTTP_ADDR"},
		{"stray argument", map[string]string{"SERVICE_TOKEN": "x", "SECRETS_KEYS": testKeys}, []string{"extra"}, "unexpected"},
		{"pprof on a public address", map[string]string{"SERVICE_TOKEN": "x", "SECRETS_KEYS": testKeys, "PPROF_ADDR": "0.0.0.0:6060"}, nil, "PPROF_ADDR"},
		{"bad migrate-on-start", map[string]string{"SERVICE_TOKEN": "x", "SECRETS_KEYS": testKeys, "MIGRATE_ON_START": "sometimes"}, nil, "MIGRATE_ON_START"},
		{"contacts as a gRPC dns target", map[string]string{"SERVICE_TOKEN": "x", "SECRETS_KEYS": testKeys, "CONTACTS_ADDR": "dns:///contacts-headless:7101", "PPROF_ADDR": "127.0.0.1:6060"}, nil, "none"},
		{"defaults", map[string]string{"SERVICE_TOKEN": "x", "SECRETS_KEYS": testKeys}, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			cfg, err := parseConfig(tc.args, func(k string) string { return tc.env[k] }, &out)
			if tc.wantErr == "none" {
				if err != nil {
					t.Errorf("got error %v, want none", err)
				}
				return
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("got error %v", err)
				}
				want := config{NATSURL: "nats://127.0.0.1:4222", DatabaseURL: cfg.DatabaseURL, GRPCAddr: "127.0.0.1:7102",
					AdminAddr: "127.0.0.1:7202", HTTPAddr: "127.0.0.1:7302", PublicBaseURL: "http://127.0.0.1:7302",
					ContactsAddr: "127.0.0.1:7101", ServiceToken: "x", LogLevel: "info", LogFormat: "json", Migrate: true}
				if cfg.Keys == nil {
					t.Fatal("got no keyring")
				}
				cfg.Keys = nil
				if cfg != want {
					t.Errorf("got %+v, want %+v", cfg, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got error %v, want one naming %s", err, tc.wantErr)
			}
		})
	}
}
