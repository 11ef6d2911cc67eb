package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/customertext/webhooks/e2e/devstack"
)

// TestPrometheusScrapesTheStackAndEvaluatesTheRules runs the real Prometheus (Debian's package,
// which `make test` unpacks into .bin/) with deploy/prometheus against the real services: every
// service is a target with its own job and namespace="dev", and every recording and alerting
// rule evaluates without error against what they export (a many-to-many match or a bad label
// would show here, not in promtool's synthetic series).
func TestPrometheusScrapesTheStackAndEvaluatesTheRules(t *testing.T) {
	bin := devstack.FindPrometheus(filepath.Join("..", ".bin"))
	if bin == "" {
		t.Fatal("no prometheus binary in .bin/ or on PATH: run `make rules-test` (scripts/install-prometheus.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stack := startStack(ctx, t, devstack.Config{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if _, err := stack.StartPrometheus(ctx, devstack.PrometheusConfig{Binary: bin,
		ConfigFile: filepath.Join("..", "deploy/prometheus/prometheus.yml"), Addr: addr}); err != nil {
		t.Fatal(err)
	}

	var targets struct {
		Data struct {
			ActiveTargets []struct {
				Labels map[string]string `json:"labels"`
				Health string            `json:"health"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	err = await(ctx, func() (bool, string) {
		if err := getJSON(ctx, "http://"+addr+"/api/v1/targets", &targets); err != nil {
			return false, err.Error()
		}
		var up []string
		for _, tg := range targets.Data.ActiveTargets {
			if tg.Health == "up" && tg.Labels["namespace"] == "dev" {
				up = append(up, tg.Labels["job"])
			}
		}
		sort.Strings(up)
		return fmt.Sprint(up) == "[campaigns contacts dispatcher messaging subscriptions]", fmt.Sprintf("targets up: %v", up)
	})
	if err != nil {
		t.Fatal(err)
	}

	// Every target has been scraped once: rules evaluated from now on see the services' series.
	scraped := time.Now()
	var rules struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name           string    `json:"name"`
					Health         string    `json:"health"`
					LastError      string    `json:"lastError"`
					LastEvaluation time.Time `json:"lastEvaluation"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	err = await(ctx, func() (bool, string) {
		if err := getJSON(ctx, "http://"+addr+"/api/v1/rules", &rules); err != nil {
			return false, err.Error()
		}
		n, pending := 0, 0
		for _, g := range rules.Data.Groups {
			for _, r := range g.Rules {
				n++
				if r.Health == "unknown" || !r.LastEvaluation.After(scraped) {
					pending++
				}
			}
		}
		return n > 0 && pending == 0, fmt.Sprintf("%d rules, %d not yet evaluated since every target was scraped", n, pending)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Data.Groups {
		for _, r := range g.Rules {
			if r.Health != "ok" {
				t.Errorf("rule %s (group %s): health %s: %s", r.Name, g.Name, r.Health, r.LastError)
			}
		}
	}

	// A recording rule has a value for the dev namespace: the labels the rules group by exist.
	q := url.Values{"query": {`namespace_consumer:dispatcher_consumer_pending:max{namespace="dev", consumer="fanout"}`}}
	var res struct {
		Data struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	err = await(ctx, func() (bool, string) {
		if err := getJSON(ctx, "http://"+addr+"/api/v1/query?"+q.Encode(), &res); err != nil {
			return false, err.Error()
		}
		return len(res.Data.Result) == 1, fmt.Sprintf("%d series", len(res.Data.Result))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// await polls cond until it holds or ctx ends; the error carries cond's last word.
func await(ctx context.Context, cond func() (bool, string)) error {
	for {
		ok, last := cond()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", last, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
