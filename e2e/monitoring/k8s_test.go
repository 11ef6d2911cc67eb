package monitoring

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

// services are the five deployables; their names are the `job` label everywhere.
var services = []string{"contacts", "messaging", "campaigns", "subscriptions", "dispatcher"}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
}

// TestPrometheusRuleIsTheDevRules: the Kubernetes rules cannot drift from the ones promtool tests.
func TestPrometheusRuleIsTheDevRules(t *testing.T) {
	var dev any
	readYAML(t, "deploy/prometheus/alerts.yml", &dev)
	var pr struct {
		Kind string `yaml:"kind"`
		Spec any    `yaml:"spec"`
	}
	readYAML(t, "k8s/base/monitoring/prometheusrule.yaml", &pr)
	if pr.Kind != "PrometheusRule" {
		t.Fatalf("kind %q, want PrometheusRule", pr.Kind)
	}
	if !reflect.DeepEqual(pr.Spec, dev) {
		t.Fatal("k8s/base/monitoring/prometheusrule.yaml differs from deploy/prometheus/alerts.yml: run `make monitoring`")
	}
}

// TestJobLabelsAgree: the dev scrape config's jobs and the PodMonitor's job label values (the
// pods' app.kubernetes.io/name) are the five service names the rules select on.
func TestJobLabelsAgree(t *testing.T) {
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "deploy/prometheus/prometheus.yml", &prom)
	var jobs []string
	for _, sc := range prom.ScrapeConfigs {
		jobs = append(jobs, sc.JobName)
		for _, st := range sc.StaticConfigs {
			if st.Labels["namespace"] == "" {
				t.Errorf("dev job %s has no namespace label", sc.JobName)
			}
		}
	}
	if !slices.Equal(jobs, services) {
		t.Errorf("dev scrape jobs %v, want %v", jobs, services)
	}

	var pm struct {
		Spec struct {
			JobLabel string `yaml:"jobLabel"`
			Selector struct {
				MatchExpressions []struct {
					Key    string   `yaml:"key"`
					Values []string `yaml:"values"`
				} `yaml:"matchExpressions"`
			} `yaml:"selector"`
			Endpoints []struct {
				Port string `yaml:"port"`
			} `yaml:"podMetricsEndpoints"`
		} `yaml:"spec"`
	}
	readYAML(t, "k8s/base/monitoring/podmonitor.yaml", &pm)
	if pm.Spec.JobLabel != "app.kubernetes.io/name" {
		t.Errorf("PodMonitor jobLabel %q, want app.kubernetes.io/name", pm.Spec.JobLabel)
	}
	if len(pm.Spec.Selector.MatchExpressions) != 1 || !slices.Equal(pm.Spec.Selector.MatchExpressions[0].Values, services) {
		t.Errorf("PodMonitor selects %+v, want app.kubernetes.io/name in %v", pm.Spec.Selector.MatchExpressions, services)
	}
	if len(pm.Spec.Endpoints) != 1 || pm.Spec.Endpoints[0].Port != "admin" {
		t.Errorf("PodMonitor endpoints %+v, want the admin port", pm.Spec.Endpoints)
	}
}

// TestRenderedPodsAreScraped renders the production overlay (kubectl kustomize, as CI's machine
// has it) and checks that every Deployment of a service has the pod label and the `admin` port
// the PodMonitor selects, and that both monitoring objects land in the services' namespace.
func TestRenderedPodsAreScraped(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl (Debian's kubernetes-client) is needed to render k8s/: %v", err)
	}
	out, err := exec.Command(kubectl, "kustomize", filepath.Join(repoRoot, "k8s/overlays/prod")).Output()
	if err != nil {
		t.Fatalf("render k8s/overlays/prod: %v", err)
	}
	type object struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name      string `yaml:"name"`
			Namespace string `yaml:"namespace"`
		} `yaml:"metadata"`
		Spec struct {
			Template struct {
				Metadata struct {
					Labels map[string]string `yaml:"labels"`
				} `yaml:"metadata"`
				Spec struct {
					Containers []struct {
						Ports []struct {
							Name string `yaml:"name"`
						} `yaml:"ports"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	scraped := map[string]bool{}
	monitoring := map[string]string{}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o object
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode rendered manifests: %v", err)
		}
		switch o.Kind {
		case "PodMonitor", "PrometheusRule":
			monitoring[o.Kind] = o.Metadata.Namespace
		case "Deployment":
			name := o.Spec.Template.Metadata.Labels["app.kubernetes.io/name"]
			for _, c := range o.Spec.Template.Spec.Containers {
				for _, p := range c.Ports {
					if p.Name == "admin" && slices.Contains(services, name) {
						scraped[name] = true
					}
				}
			}
		}
	}
	for _, s := range services {
		if !scraped[s] {
			t.Errorf("no Deployment with pod label app.kubernetes.io/name=%s and an admin port: the PodMonitor scrapes nothing of it", s)
		}
	}
	for _, k := range []string{"PodMonitor", "PrometheusRule"} {
		if monitoring[k] != "customertext-webhooks" {
			t.Errorf("%s rendered in namespace %q, want customertext-webhooks", k, monitoring[k])
		}
	}
}
