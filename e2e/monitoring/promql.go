package monitoring

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// grouping matches the label lists of PromQL's grouping and matching modifiers, whose names are
// labels, not metrics.
var grouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)

// keywords are PromQL words that look like identifiers but are not metric names.
var keywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"inf": true, "nan": true}

// MetricNames returns the metric names a PromQL expression (or a Grafana label_values() query)
// selects. It drops strings, label matchers, ranges and grouping lists, then takes every remaining
// identifier that is not a function call or a keyword.
func MetricNames(expr string) []string {
	if inner, ok := strings.CutPrefix(strings.TrimSpace(expr), "label_values("); ok {
		// label_values(selector, label): the label is not a metric.
		if i := strings.LastIndex(inner, ","); i >= 0 {
			expr = inner[:i]
		} else {
			expr = strings.TrimSuffix(inner, ")")
		}
	}
	var b strings.Builder
	depth := map[rune]int{}
	inString := false
	for i, r := range expr {
		switch {
		case inString:
			if r == '"' && (i == 0 || expr[i-1] != '\\') {
				inString = false
			}
			continue
		case r == '"':
			inString = true
			continue
		case r == '{' || r == '[':
			depth[r]++
			continue
		case r == '}':
			depth['{']--
			b.WriteRune(' ')
			continue
		case r == ']':
			depth['[']--
			b.WriteRune(' ')
			continue
		}
		if depth['{'] > 0 || depth['['] > 0 {
			continue
		}
		b.WriteRune(r)
	}
	s := grouping.ReplaceAllString(b.String(), " ")
	seen := map[string]bool{}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c >= '0' && c <= '9' || c == '.':
			// A number or duration: 0.99, 1e3, 5m.
			for i < len(s) && (isIdent(s[i]) || s[i] == '.') {
				i++
			}
		case isIdent(c) || c == '$':
			j := i
			for j < len(s) && (isIdent(s[j]) || s[j] == '$') {
				j++
			}
			word := s[i:j]
			k := j
			for k < len(s) && s[k] == ' ' {
				k++
			}
			call := k < len(s) && s[k] == '('
			if !call && !keywords[strings.ToLower(word)] && !strings.HasPrefix(word, "$") {
				seen[word] = true
			}
			i = j
		default:
			i++
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func isIdent(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Query is one PromQL expression of a dashboard, with where it is.
type Query struct {
	Where string
	Expr  string
}

// DashboardQueries returns every panel target and every template variable query of a Grafana
// dashboard file.
func DashboardQueries(path string) ([]Query, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read dashboard: %w", err)
	}
	var d struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("parse dashboard %s: %w", path, err)
	}
	var out []Query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				out = append(out, Query{Where: fmt.Sprintf("panel %q %s", p.Title, t.RefID), Expr: t.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		switch q := v.Query.(type) {
		case string:
			out = append(out, Query{Where: "variable " + v.Name, Expr: q})
		case map[string]any:
			if s, ok := q["query"].(string); ok {
				out = append(out, Query{Where: "variable " + v.Name, Expr: s})
			}
		}
	}
	return out, nil
}

type panel struct {
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// Exporters are the metrics of the components we do not build, which the dashboards and rules
// may use, each with the exporter (and its source) that exports it. Checked by name only: they
// are not running in tests.
var Exporters = map[string]string{
	// Prometheus itself.
	"up":     "prometheus (scrape health)",
	"ALERTS": "prometheus (alerting rules' state)",
	// nats-io/prometheus-nats-exporter, run with -varz -jsz=all: collector/jsz.go ("jetstream"
	// system) and collector/collector.go ("gnatsd" core system, /varz fields).
	"jetstream_stream_total_messages":      "prometheus-nats-exporter collector/jsz.go",
	"jetstream_stream_total_bytes":         "prometheus-nats-exporter collector/jsz.go",
	"jetstream_consumer_num_pending":       "prometheus-nats-exporter collector/jsz.go",
	"jetstream_consumer_num_ack_pending":   "prometheus-nats-exporter collector/jsz.go",
	"jetstream_consumer_num_redelivered":   "prometheus-nats-exporter collector/jsz.go",
	"jetstream_server_total_message_bytes": "prometheus-nats-exporter collector/jsz.go",
	"jetstream_server_max_storage":         "prometheus-nats-exporter collector/jsz.go",
	"gnatsd_varz_connections":              "prometheus-nats-exporter collector/collector.go (varz)",
	"gnatsd_varz_slow_consumers":           "prometheus-nats-exporter collector/collector.go (varz)",
	"gnatsd_varz_in_msgs":                  "prometheus-nats-exporter collector/collector.go (varz)",
	"gnatsd_varz_out_msgs":                 "prometheus-nats-exporter collector/collector.go (varz)",
	// prometheus-community/postgres_exporter: cmd/postgres_exporter (pg_up),
	// collector/pg_stat_database.go, collector/pg_database.go, collector/pg_setting.go.
	"pg_up":                          "postgres_exporter",
	"pg_stat_database_numbackends":   "postgres_exporter collector/pg_stat_database.go",
	"pg_stat_database_xact_commit":   "postgres_exporter collector/pg_stat_database.go",
	"pg_stat_database_xact_rollback": "postgres_exporter collector/pg_stat_database.go",
	"pg_stat_database_blks_hit":      "postgres_exporter collector/pg_stat_database.go",
	"pg_stat_database_blks_read":     "postgres_exporter collector/pg_stat_database.go",
	"pg_stat_database_deadlocks":     "postgres_exporter collector/pg_stat_database.go",
	"pg_database_size_bytes":         "postgres_exporter collector/pg_database.go",
	"pg_settings_max_connections":    "postgres_exporter collector/pg_setting.go",
	// kubernetes/kube-state-metrics (docs/metrics/workload/pod-metrics.md) and cAdvisor (kubelet).
	"kube_pod_container_status_restarts_total": "kube-state-metrics",
	"kube_pod_container_resource_limits":       "kube-state-metrics",
	"container_memory_working_set_bytes":       "cAdvisor",
	"container_cpu_usage_seconds_total":        "cAdvisor",
}
