package monitoring

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// repoRoot is the repository, seen from e2e/monitoring.
const repoRoot = "../.."

// ruleFile is the shape of a Prometheus rules file (and of a PrometheusRule's spec).
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy/prometheus/alerts.yml"))
	if err != nil {
		t.Fatalf("read rules: %v", err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatalf("parse rules: %v", err)
	}
	return rf
}

// TestEveryAlertHasARunbook: each alert links docs/runbooks/<alert>.md, which exists and says
// what the alert means, how to check and how to fix; each has a severity and a summary.
func TestEveryAlertHasARunbook(t *testing.T) {
	rf := readRules(t)
	alerts := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			want := "/docs/runbooks/" + r.Alert + ".md"
			if got := r.Annotations["runbook_url"]; !strings.HasSuffix(got, want) {
				t.Errorf("%s: runbook_url %q, want one ending in %q", r.Alert, got, want)
			}
			if sev := r.Labels["severity"]; sev != "page" && sev != "ticket" {
				t.Errorf("%s: severity %q, want page or ticket", r.Alert, sev)
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s: no summary", r.Alert)
			}
			b, err := os.ReadFile(filepath.Join(repoRoot, "docs/runbooks", r.Alert+".md"))
			if err != nil {
				t.Errorf("%s: %v", r.Alert, err)
				continue
			}
			for _, section := range []string{"## What it means", "## How to check", "## How to fix"} {
				if !strings.Contains(string(b), section) {
					t.Errorf("runbook of %s lacks %q", r.Alert, section)
				}
			}
		}
	}
	if alerts < 10 {
		t.Fatalf("found %d alerts in alerts.yml, want the whole set", alerts)
	}
}

// TestAggregationsKeepNamespace: one Prometheus may watch several environments; an aggregation
// that drops `namespace` mixes them.
func TestAggregationsKeepNamespace(t *testing.T) {
	rf := readRules(t)
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			name := r.Alert + r.Record
			for _, agg := range []string{"sum", "max", "min", "avg", "count"} {
				rest := r.Expr
				for {
					i := strings.Index(rest, agg+" by (")
					if i < 0 {
						break
					}
					rest = rest[i+len(agg)+5:]
					end := strings.Index(rest, ")")
					if !strings.Contains(rest[:end], "namespace") {
						t.Errorf("%s: %s by (%s) drops namespace", name, agg, rest[:end])
					}
				}
				if strings.Contains(r.Expr, agg+"(") {
					t.Errorf("%s: %s( without by drops namespace", name, agg)
				}
			}
		}
	}
}
