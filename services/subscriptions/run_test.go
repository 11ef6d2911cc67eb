package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protojson"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	base := map[string]string{"SERVICE_TOKEN": "tok", "SECRETS_KEYS": testKeys()}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
		check   func(t *testing.T, c config)
	}{
		{name: "defaults", env: base, check: func(t *testing.T, c config) {
			if c.GRPCAddr != "127.0.0.1:7104" || c.HTTPAddr != "127.0.0.1:7304" || c.AdminAddr != "127.0.0.1:7204" || len(c.CORSOrigins) != 0 || c.AutoDisableAfter != 120*time.Hour ||
				c.AttemptRetention != 720*time.Hour || c.AllowInsecureHTTP || len(c.SSRFAllow) != 0 {
				t.Errorf("defaults: got %+v", c)
			}
		}},
		{name: "flags override env", env: merge(base, map[string]string{"GRPC_ADDR": "127.0.0.1:1"}),
			args: []string{"-grpc-addr", "127.0.0.1:2", "-allow-insecure-http", "true", "-ssrf-allow", "127.0.0.0/8"},
			check: func(t *testing.T, c config) {
				if c.GRPCAddr != "127.0.0.1:2" || !c.AllowInsecureHTTP || len(c.SSRFAllow) != 1 {
					t.Errorf("got grpc %q insecure %v allow %v", c.GRPCAddr, c.AllowInsecureHTTP, c.SSRFAllow)
				}
			}},
		{name: "env fallback", env: merge(base, map[string]string{"ALLOW_INSECURE_HTTP": "true", "AUTO_DISABLE_AFTER": "1h"}),
			check: func(t *testing.T, c config) {
				if !c.AllowInsecureHTTP || c.AutoDisableAfter != time.Hour {
					t.Errorf("got insecure %v auto-disable %v, want true 1h", c.AllowInsecureHTTP, c.AutoDisableAfter)
				}
			}},
		{name: "service token required", env: map[string]string{"SECRETS_KEYS": testKeys()}, wantErr: "SERVICE_TOKEN"},
		{name: "secrets keys required", env: map[string]string{"SERVICE_TOKEN": "x"}, wantErr: "SECRETS_KEYS"},
		{name: "bad secrets keys", env: merge(base, map[string]string{"SECRETS_KEYS": "k1:short"}), wantErr: "SECRETS_KEYS"},
		{name: "bad bool", env: merge(base, map[string]string{"ALLOW_INSECURE_HTTP": "maybe"}), wantErr: "ALLOW_INSECURE_HTTP"},
		{name: "bad ssrf allow", env: merge(base, map[string]string{"SSRF_ALLOW": "nonsense"}), wantErr: "SSRF_ALLOW"},
		{name: "bad auto disable", env: merge(base, map[string]string{"AUTO_DISABLE_AFTER": "-1h"}), wantErr: "AUTO_DISABLE_AFTER"},
		{name: "retention too short", env: merge(base, map[string]string{"ATTEMPT_RETENTION": "1h"}), wantErr: "ATTEMPT_RETENTION"},
		{name: "cors origins", env: merge(base, map[string]string{"CORS_ORIGINS": "https://app.example.com, http://localhost:3000"}),
			check: func(t *testing.T, c config) {
				if diff := cmp.Diff([]string{"https://app.example.com", "http://localhost:3000"}, c.CORSOrigins); diff != "" {
					t.Errorf("CORSOrigins (-want +got):\n%s", diff)
				}
			}},
		{name: "bad cors origin", env: merge(base, map[string]string{"CORS_ORIGINS": "app.example.com/x"}), wantErr: "CORS_ORIGINS"},
		{name: "pprof off by default", env: base, check: func(t *testing.T, c config) {
			if c.PprofAddr != "" || !c.Migrate {
				t.Errorf("got pprof %q migrate %v, want none and true", c.PprofAddr, c.Migrate)
			}
		}},
		{name: "pprof on a public address", env: merge(base, map[string]string{"PPROF_ADDR": ":6060"}), wantErr: "PPROF_ADDR"},
		{name: "stray argument", env: base, args: []string{"serve"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error: got %v, want one naming %s", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), testKeys()[3:]) {
					t.Errorf("error leaks the key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func TestAdminEndpointsAndMetrics(t *testing.T) {
	e := newEnv(t)
	_, ctx := e.admin("Acme")
	if _, err := e.webhooks.ListEventTypes(ctx, &webhooksv1.ListEventTypesRequest{}); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+e.addrs.Admin+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(path); code != http.StatusOK {
			t.Errorf("GET %s: got %d %q, want 200", path, code, body)
		}
	}
	_, metrics := get("/metrics")
	for _, name := range []string{
		"grpc_server_handled_total", "subscriptions_attempt_records_written_total", "subscriptions_attempt_writer_batch_size",
		"subscriptions_attempt_writer_batch_seconds", "subscriptions_attempt_writer_lag_seconds",
	} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if strings.Contains(metrics, "acc_") || strings.Contains(metrics, "wh_") {
		t.Errorf("/metrics carries per-account or per-webhook labels")
	}
}

func TestListEventTypes(t *testing.T) {
	e := newEnv(t)
	accountID, ctx := e.admin("Acme")
	resp, err := e.webhooks.ListEventTypes(ctx, &webhooksv1.ListEventTypesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, et := range resp.GetEventTypes() {
		names = append(names, et.GetName())
		if et.GetDescription() == "" || !strings.Contains(et.GetSamplePayload(), `"event":"`+et.GetName()+`"`) ||
			!strings.Contains(et.GetSamplePayload(), accountID) {
			t.Errorf("event type %s: description %q sample %q", et.GetName(), et.GetDescription(), et.GetSamplePayload())
		}
		checkBodySchema(t, et)
	}
	want := "new_contact contact_updated contact_opt_out inbound_message keyword_opt_in campaign_sent"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("names: got %q, want %q", got, want)
	}
}

// checkBodySchema compiles the type's body schema with a JSON Schema validator: the sample
// body passes, the sample without data or with a data field of the wrong type does not.
func checkBodySchema(t *testing.T, et *webhooksv1.EventType) {
	t.Helper()
	raw, err := protojson.Marshal(et.GetBodySchema())
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("body.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("body.json")
	if err != nil {
		t.Fatalf("event type %s: body schema does not compile: %v", et.GetName(), err)
	}
	parse := func(s string) map[string]any {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		return v.(map[string]any)
	}
	if err := schema.Validate(parse(et.GetSamplePayload())); err != nil {
		t.Errorf("event type %s: sample does not match its schema: %v", et.GetName(), err)
	}
	noData := parse(et.GetSamplePayload())
	delete(noData, "data")
	if schema.Validate(noData) == nil {
		t.Errorf("event type %s: a body without data passes the schema", et.GetName())
	}
	wrong := parse(et.GetSamplePayload())
	for k := range wrong["data"].(map[string]any) {
		wrong["data"].(map[string]any)[k] = map[string]any{"not": "this"}
		break
	}
	if schema.Validate(wrong) == nil {
		t.Errorf("event type %s: a data field of the wrong type passes the schema", et.GetName())
	}
}
