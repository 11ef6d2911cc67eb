package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/customertext/webhooks/e2e/devstack"
	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/libs/signing"
)

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	binDir := fs.String("bin", ".bin", "folder with the service binaries (make build)")
	dataDir := fs.String("data", "", "folder for NATS storage and service logs (default: a fresh temporary folder)")
	dbName := fs.String("database", "customertext_dev", "PostgreSQL database to (re)create and use; its previous content is dropped")
	receiverAddr := fs.String("receiver-addr", "127.0.0.1:7400", "listen address of the demo webhook receiver")
	natsNodes := fs.Int("nats-nodes", 1, "1: one embedded nats-server on 127.0.0.1:14222; 3: a 3-node JetStream cluster (processes on random loopback ports) with R3 streams")
	promBin := fs.String("prometheus", "auto", `prometheus binary to run with the dev scrape config and the alert rules; "auto": the one in -bin or on PATH (Debian's package), if any; "off": none`)
	promConfig := fs.String("prometheus-config", "../deploy/prometheus/prometheus.yml", "Prometheus scrape config (its rules are read from its folder)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	baseURL := getenv("DATABASE_URL")
	if baseURL == "" {
		baseURL = postgres.DefaultURL
	}
	bin, err := filepath.Abs(*binDir)
	if err != nil {
		return fmt.Errorf("resolve bin dir: %w", err)
	}
	if *dataDir == "" {
		d, err := os.MkdirTemp("", "customertext-dev-")
		if err != nil {
			return fmt.Errorf("create data dir: %w", err)
		}
		*dataDir = d
	}
	dbURL, err := devstack.FreshDatabase(ctx, baseURL, *dbName)
	if err != nil {
		return err
	}

	rcv, err := devstack.StartReceiver(*receiverAddr)
	if err != nil {
		return err
	}
	defer rcv.Close()

	natsDesc := fmt.Sprintf("embedded NATS on 127.0.0.1:%d", devstack.DevPorts().NATS)
	if *natsNodes > 1 {
		natsDesc = fmt.Sprintf("a %d-node NATS JetStream cluster, streams R3", *natsNodes)
	}
	fmt.Fprintf(stdout, "Starting the platform (%s, PostgreSQL database %s, logs in %s)...\n",
		natsDesc, *dbName, filepath.Join(*dataDir, "logs"))
	stack, err := devstack.Start(ctx, devstack.Config{BinDir: bin, DataDir: *dataDir, DatabaseURL: dbURL,
		Ports: devstack.DevPorts(), NATSNodes: *natsNodes})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stdout, "\nStopping...")
		if errs := stack.Stop(); len(errs) > 0 {
			fmt.Fprintln(stdout, errors.Join(errs...))
		}
		fmt.Fprintln(stdout, "Stopped.")
	}()

	fmt.Fprintln(stdout, "All services ready. Creating a demo account, a new_contact webhook and a contact...")
	dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	demo, err := devstack.RunDemo(dctx, stack, rcv)
	cancel()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	printRequest(stdout, demo)
	printGuide(stdout, stack, demo, rcv.URL, *dataDir)
	if err := printLoginLinks(stdout, stack, demo); err != nil {
		return err
	}
	startPrometheus(ctx, stdout, stack, bin, *promBin, *promConfig)
	followReceiver(ctx, stdout, rcv, len(rcv.Requests()))
	return nil
}

// printLoginLinks prints console login links for the demo admin and a manager, as the product's
// backend would mint them (valid for an hour, each usable once).
func printLoginLinks(w io.Writer, s *devstack.Stack, d devstack.Demo) error {
	admin, err := s.LoginLink(d.AccountID, "admin@demo.example", "admin", time.Hour)
	if err != nil {
		return err
	}
	manager, err := s.LoginLink(d.AccountID, "manager@demo.example", "manager", time.Hour)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, `Web console (Settings → Webhook Integrations) %s — open a link within an hour; each signs in once:
  admin:   %s
  manager: %s
`, s.ConsoleURL(), admin, manager)
	return nil
}

// followReceiver prints a line for every further request the demo receiver gets, until ctx ends.
func followReceiver(ctx context.Context, w io.Writer, rcv *devstack.Receiver, seen int) {
	for {
		_, err := rcv.WaitFor(ctx, func(devstack.Request) bool { return len(rcv.Requests()) > seen })
		if err != nil {
			return
		}
		reqs := rcv.Requests()
		for _, r := range reqs[seen:] {
			var env struct {
				Event   string `json:"event"`
				EventID string `json:"event_id"`
			}
			_ = json.Unmarshal(r.Body, &env)
			fmt.Fprintf(w, "%s receiver got %s %s (%d bytes)\n", r.At.Format(time.TimeOnly), env.Event, env.EventID, len(r.Body))
		}
		seen = len(reqs)
	}
}

func printRequest(w io.Writer, d devstack.Demo) {
	fmt.Fprintln(w, "\n=== The receiver got this webhook request ===")
	fmt.Fprintln(w, "POST /webhook")
	keys := make([]string, 0, len(d.Request.Header))
	for k := range d.Request.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s: %s\n", k, strings.Join(d.Request.Header[k], ", "))
	}
	fmt.Fprintf(w, "\n%s\n", d.Request.Body)
	verdict := "VALID"
	secret, err := signing.ParseSecret(d.SigningSecret)
	if err == nil {
		err = signing.Verify(secret, d.Request.Header, d.Request.Body, time.Now(), 5*time.Minute)
	}
	if err != nil {
		verdict = "INVALID: " + err.Error()
	}
	fmt.Fprintf(w, "\nStandard Webhooks signature checked with the webhook's secret: %s\n", verdict)
}

func printGuide(w io.Writer, s *devstack.Stack, d devstack.Demo, receiverURL, dataDir string) {
	p := s.Ports()
	fmt.Fprintf(w, `
=== The platform keeps running; Ctrl-C stops everything ===
Account ID:         %s
Admin API key:      %s
Webhook ID:         %s  (secret %s...)
Demo receiver:      %s (each request it gets is printed below)
Service credential: %s

gRPC (server reflection on; grpcurl works):
  subscriptions  %s   e.g. grpcurl -plaintext -H 'authorization: Bearer %s' %s customertext.webhooks.v1.WebhookService/ListWebhooks
  contacts       %s   e.g. grpcurl -plaintext -H 'authorization: Bearer %s' -d '{"account_id":"%s","contact":{"first_name":"Ann","phone":"+15551230000"}}' %s customertext.contacts.v1.ContactService/CreateContact
  messaging      %s   inbound SMS: POST http://%s/sms/inbound
  campaigns      %s
HTTP/JSON API %s (OpenAPI 3: http://%s/v1/openapi.json):
%s
Metrics (/metrics, /healthz, /readyz):
  subscriptions http://%s  contacts http://%s  messaging http://%s
  campaigns http://%s  dispatcher http://%s
NATS: %s   Logs: %s
`,
		d.AccountID, d.AdminKey, d.WebhookID, d.SigningSecret[:10], receiverURL, s.ServiceToken,
		devstack.Addr(p.SubscriptionsGRPC), d.AdminKey, devstack.Addr(p.SubscriptionsGRPC),
		devstack.Addr(p.ContactsGRPC), s.ServiceToken, d.AccountID, devstack.Addr(p.ContactsGRPC),
		devstack.Addr(p.MessagingGRPC), devstack.Addr(p.MessagingHTTP),
		devstack.Addr(p.CampaignsGRPC),
		devstack.Addr(p.SubscriptionsHTTP), devstack.Addr(p.SubscriptionsHTTP), curlExamples(devstack.Addr(p.SubscriptionsHTTP), d, receiverURL),
		devstack.Addr(p.SubscriptionsAdmin), devstack.Addr(p.ContactsAdmin), devstack.Addr(p.MessagingAdmin),
		devstack.Addr(p.CampaignsAdmin), devstack.Addr(p.DispatcherAdmin),
		s.NATSURL(), filepath.Join(dataDir, "logs"))
}

// curlExamples renders devstack.CurlExamples for the demo account, one indented pair of lines
// each; the last one deletes the demo webhook.
func curlExamples(addr string, d devstack.Demo, receiverURL string) string {
	var b strings.Builder
	for _, c := range devstack.CurlExamples(receiverURL, d.WebhookID) {
		fmt.Fprintf(&b, "  # %s\n  %s\n", c.What, c.Command(addr, d.AdminKey))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// startPrometheus runs Prometheus against the stack when a binary is at hand, and says where to
// look; without one it says how to get one. The platform runs either way.
func startPrometheus(ctx context.Context, w io.Writer, s *devstack.Stack, binDir, binary, config string) {
	switch binary {
	case "off":
		return
	case "auto":
		binary = devstack.FindPrometheus(binDir)
	}
	if binary == "" {
		fmt.Fprintln(w, "Prometheus: not started (no prometheus binary; `apt-get install prometheus`, or `make rules-test`, which unpacks Debian's package into .bin/)")
		return
	}
	addr := devstack.Addr(devstack.PrometheusPort)
	if _, err := s.StartPrometheus(ctx, devstack.PrometheusConfig{Binary: binary, ConfigFile: config, Addr: addr}); err != nil {
		fmt.Fprintf(w, "Prometheus: not started: %v\n", err)
		return
	}
	fmt.Fprintf(w, `Prometheus:         http://%[1]s  (deploy/prometheus: scrape config and rules, job per service, namespace "dev")
  targets http://%[1]s/targets   alerts http://%[1]s/alerts   rules http://%[1]s/rules
  e.g. http://%[1]s/graph?g0.expr=sum+by+(outcome)+(rate(dispatcher_deliveries_total[1m]))
  Grafana: import deploy/grafana/*.json with this Prometheus as data source. Runbooks: docs/runbooks/, on-call: docs/oncall.md
`, addr)
}
