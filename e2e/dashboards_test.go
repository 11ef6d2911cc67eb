package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/customertext/webhooks/e2e/devstack"
	"github.com/customertext/webhooks/e2e/monitoring"
)

// dashboards are the Grafana dashboards SREs import (deploy/grafana).
var dashboards = []string{"customertext-webhooks.json", "delivery.json", "infrastructure.json"}

// scrape returns the sample names (histograms as their _bucket/_sum/_count series) and each
// series' value, as the service at adminAddr exposes them on /metrics.
func scrape(ctx context.Context, adminAddr string) (map[string]bool, map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+adminAddr+"/metrics", nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("scrape %s: %w", adminAddr, err)
	}
	defer resp.Body.Close()
	names, series := map[string]bool{}, map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		if _, err := fmt.Sscan(line[i+1:], &v); err != nil {
			return nil, nil, fmt.Errorf("parse %q: %w", line, err)
		}
		series[line[:i]] = v
		names[line[:strings.IndexAny(line, "{ ")]] = true
	}
	return names, series, sc.Err()
}

func adminAddrs(s *devstack.Stack) map[string]string {
	p := s.Ports()
	return map[string]string{
		"contacts": devstack.Addr(p.ContactsAdmin), "messaging": devstack.Addr(p.MessagingAdmin),
		"campaigns": devstack.Addr(p.CampaignsAdmin), "subscriptions": devstack.Addr(p.SubscriptionsAdmin),
		"dispatcher": devstack.Addr(p.DispatcherAdmin),
	}
}

// TestDashboardAndRuleMetricsExist starts the real services, scrapes them before any traffic
// (counters that panels and alerts read must already be there at 0, not "no data"), drives one
// webhook through them, scrapes again, and checks that every metric name in every dashboard query
// and every rule is exported by a service, recorded by a rule, or one of the named exporters'.
func TestDashboardAndRuleMetricsExist(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stack := startStack(ctx, t, devstack.Config{})

	exported := map[string]bool{}
	zeroes := map[string]string{
		"dispatcher":    `dispatcher_deferred_total{reason="circuit_open"} dispatcher_deferred_total{reason="endpoint_busy"} dispatcher_events_invalid_total{reason="unparseable"} dispatcher_platform_failures_total{stage="settle"} dispatcher_jobs_invalid_total{reason="unparseable"} dispatcher_dead_letters_total dispatcher_deliveries_total{event_type="new_contact",outcome="dead_lettered"}`,
		"subscriptions": `subscriptions_webhooks_auto_disabled_total{reason="failing"} subscriptions_webhooks_auto_disabled_total{reason="gone"} subscriptions_attempt_writer_failures_total`,
		"contacts":      `outbox_publish_failures_total{schema="contacts"} contacts_created_total{source="import"}`,
		"messaging":     `messaging_inbound_signature_failures_total outbox_publish_failures_total{schema="messaging"}`,
		"campaigns":     `outbox_publish_failures_total{schema="campaigns"}`,
	}
	for svc, addr := range adminAddrs(stack) {
		_, series, err := scrape(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range strings.Fields(zeroes[svc]) {
			if v, ok := series[s]; !ok || v != 0 {
				t.Errorf("%s before any traffic: %s = %v (exposed: %v), want an exposed 0", svc, s, v, ok)
			}
		}
	}

	rcv, err := devstack.StartReceiver("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	if _, err := devstack.RunDemo(ctx, stack, rcv); err != nil {
		t.Fatal(err)
	}
	for _, addr := range adminAddrs(stack) {
		names, _, err := scrape(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		for n := range names {
			exported[n] = true
		}
	}

	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Record, Expr string
			}
		}
	}
	b, err := os.ReadFile(filepath.Join("..", "deploy/prometheus/alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	recorded := map[string]bool{}
	var queries []monitoring.Query
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = true
			}
			queries = append(queries, monitoring.Query{Where: "rule " + r.Alert + r.Record, Expr: r.Expr})
		}
	}
	for _, d := range dashboards {
		qs, err := monitoring.DashboardQueries(filepath.Join("..", "deploy/grafana", d))
		if err != nil {
			t.Fatal(err)
		}
		if len(qs) < 10 {
			t.Errorf("%s: %d queries, want a dashboard", d, len(qs))
		}
		for _, q := range qs {
			queries = append(queries, monitoring.Query{Where: d + " " + q.Where, Expr: q.Expr})
		}
	}
	used := map[string]bool{}
	for _, q := range queries {
		names := monitoring.MetricNames(q.Expr)
		for _, n := range names {
			used[n] = true
			if !exported[n] && !recorded[n] && monitoring.Exporters[n] == "" {
				t.Errorf("%s: metric %s is exported by no service, recorded by no rule, and no named exporter's: %s", q.Where, n, q.Expr)
			}
		}
	}
	// The signals the review found exported but neither shown nor alerted on.
	for _, n := range []string{"outbox_publish_failures_total", "subscriptions_attempt_writer_failures_total",
		"subscriptions_webhooks_auto_disabled_total", "dispatcher_events_invalid_total", "dispatcher_index_webhooks",
		"contacts_nats_connected", "messaging_inbound_signature_failures_total"} {
		if !used[n] {
			t.Errorf("%s is exported but no dashboard or rule uses it", n)
		}
	}
}

// fixedRate finds rate()/increase() windows other than Grafana's $__rate_interval (or a
// deliberate hour).
var fixedRate = regexp.MustCompile(`(rate|increase)\([^\[]*\[([^\]]+)\]`)

// TestDashboardsAreClusterReady: every dashboard lets SREs pick namespace, job and instance, takes
// its data source from a variable, and sizes rate windows with $__rate_interval.
func TestDashboardsAreClusterReady(t *testing.T) {
	for _, d := range dashboards {
		b, err := os.ReadFile(filepath.Join("..", "deploy/grafana", d))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{`"name": "datasource"`, `"name": "namespace"`, `"name": "job"`, `"name": "instance"`} {
			if !strings.Contains(string(b), v) {
				t.Errorf("%s: no variable %s", d, v)
			}
		}
		qs, err := monitoring.DashboardQueries(filepath.Join("..", "deploy/grafana", d))
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			for _, m := range fixedRate.FindAllStringSubmatch(q.Expr, -1) {
				if m[2] != "$__rate_interval" && m[2] != "1h" {
					t.Errorf("%s %s: %s window [%s], want [$__rate_interval]", d, q.Where, m[1], m[2])
				}
			}
		}
	}
}
