package manifests_test

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/customertext/webhooks/tools/images"
	"github.com/customertext/webhooks/tools/manifests"
)

const root = "../../k8s"

// withDatabase are the services that own a PostgreSQL schema.
var withDatabase = map[string]bool{"contacts": true, "messaging": true, "campaigns": true, "subscriptions": true}

// rendered is one overlay's objects by kind.
type rendered struct {
	deployments  []*appsv1.Deployment
	pdbs         []*policyv1.PodDisruptionBudget
	policies     []*networkingv1.NetworkPolicy
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	scaled       []*manifests.ScaledObject
	triggerAuths map[string]*manifests.TriggerAuthentication
	clusters     []*manifests.Cluster
}

func render(t *testing.T, dir string) rendered {
	t.Helper()
	objs, err := manifests.Render(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := rendered{services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{},
		secrets: map[string]*corev1.Secret{}, triggerAuths: map[string]*manifests.TriggerAuthentication{}}
	for _, o := range objs {
		switch v := o.Value.(type) {
		case *appsv1.Deployment:
			r.deployments = append(r.deployments, v)
		case *policyv1.PodDisruptionBudget:
			r.pdbs = append(r.pdbs, v)
		case *networkingv1.NetworkPolicy:
			r.policies = append(r.policies, v)
		case *corev1.Service:
			r.services[v.Name] = v
		case *corev1.ConfigMap:
			r.configMaps[v.Name] = v
		case *corev1.Secret:
			r.secrets[v.Name] = v
		case *manifests.ScaledObject:
			r.scaled = append(r.scaled, v)
		case *manifests.TriggerAuthentication:
			r.triggerAuths[v.Name] = v
		case *manifests.Cluster:
			r.clusters = append(r.clusters, v)
		}
	}
	if len(r.deployments) != len(images.Services) {
		t.Fatalf("%s: %d Deployments, want one per service (%d)", dir, len(r.deployments), len(images.Services))
	}
	return r
}

func overlays(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "overlays"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, filepath.Join(root, "overlays", e.Name()))
		}
	}
	if len(out) < 2 {
		t.Fatalf("found overlays %v, want at least dev and prod", out)
	}
	return out
}

func selects(sel *metav1.LabelSelector, podLabels map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(podLabels))
}

func TestOverlaysFollowTheDeploymentRules(t *testing.T) {
	t.Parallel()
	for _, dir := range overlays(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			r := render(t, dir)
			checkDeployments(t, r)
			checkDisruptionBudgets(t, r)
			checkAutoscaling(t, r)
			checkNetworkPolicies(t, r)
			checkClientBalancing(t, r)
		})
	}
}

// checkDeployments: images as `make images` names them, probes on the real admin port and paths,
// per-service Secrets, a hash-suffixed ConfigMap, GOMEMLIMIT from the memory limit, migrations in
// an init container, non-root with a read-only root filesystem, topology spread.
func checkDeployments(t *testing.T, r rendered) {
	for _, d := range r.deployments {
		svc := d.Name
		spec := d.Spec.Template.Spec
		if len(spec.Containers) != 1 {
			t.Errorf("%s: %d containers, want 1", svc, len(spec.Containers))
			continue
		}
		c := spec.Containers[0]
		checkImage(t, svc, c.Image)
		if len(spec.TopologySpreadConstraints) == 0 {
			t.Errorf("%s: no topology spread constraints", svc)
		}
		if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != images.User {
			t.Errorf("%s: pod must run as non-root user %d", svc, images.User)
		}
		for _, cc := range append(spec.InitContainers, c) {
			if sc := cc.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s/%s: want a read-only root filesystem and no privilege escalation", svc, cc.Name)
			}
		}

		env := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			env[e.Name] = e
		}
		// Probes hit the port ADMIN_ADDR binds, on the admin paths the service serves.
		adminPort := int32(0)
		for _, p := range c.Ports {
			if p.Name == "admin" {
				adminPort = p.ContainerPort
			}
		}
		_, port, err := net.SplitHostPort(env["ADMIN_ADDR"].Value)
		if err != nil || port != strconv.Itoa(int(adminPort)) || adminPort == 0 {
			t.Errorf("%s: ADMIN_ADDR %q does not bind the admin container port %d", svc, env["ADMIN_ADDR"].Value, adminPort)
		}
		probes := map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe}
		wantPath := map[string]string{"startup": "/healthz", "readiness": "/readyz", "liveness": "/healthz"}
		for kind, p := range probes {
			if p == nil || p.HTTPGet == nil {
				t.Errorf("%s: no HTTP %s probe", svc, kind)
				continue
			}
			if p.HTTPGet.Path != wantPath[kind] {
				t.Errorf("%s: %s probe path %q, want %q", svc, kind, p.HTTPGet.Path, wantPath[kind])
			}
			if p.HTTPGet.Port.String() != "admin" && p.HTTPGet.Port.IntValue() != int(adminPort) {
				t.Errorf("%s: %s probe port %s, want the admin port", svc, kind, p.HTTPGet.Port.String())
			}
		}
		if p := c.StartupProbe; p != nil && p.PeriodSeconds*p.FailureThreshold < 60 {
			t.Errorf("%s: startup probe gives %ds, want at least 60s", svc, p.PeriodSeconds*p.FailureThreshold)
		}

		// Per-service Secrets only, and the generated (hash-suffixed) ConfigMap.
		for _, ef := range c.EnvFrom {
			switch {
			case ef.SecretRef != nil:
				if !strings.HasPrefix(ef.SecretRef.Name, "webhooks-"+svc) {
					t.Errorf("%s: mounts Secret %s, want only its own webhooks-%s", svc, ef.SecretRef.Name, svc)
				}
				if _, ok := r.secrets[ef.SecretRef.Name]; !ok && strings.Contains(ef.SecretRef.Name, "-") && len(r.secrets) > 2 {
					t.Errorf("%s: Secret %s is not rendered although the overlay generates Secrets", svc, ef.SecretRef.Name)
				}
			case ef.ConfigMapRef != nil:
				cm, ok := r.configMaps[ef.ConfigMapRef.Name]
				if !ok || ef.ConfigMapRef.Name == "webhooks-config" {
					t.Errorf("%s: ConfigMap %s is not a generated (hash-suffixed) one, changes would not roll pods", svc, ef.ConfigMapRef.Name)
				}
				for k := range cm.Data {
					if k == "SERVICE_TOKEN" || k == "DATABASE_URL" || k == "SECRETS_KEYS" || k == "NATS_URL" {
						t.Errorf("ConfigMap %s carries %s, a credential", cm.Name, k)
					}
				}
			}
		}

		// GOMEMLIMIT follows the container's memory limit.
		gm := env["GOMEMLIMIT"]
		if gm.ValueFrom == nil || gm.ValueFrom.ResourceFieldRef == nil || gm.ValueFrom.ResourceFieldRef.Resource != "limits.memory" ||
			gm.ValueFrom.ResourceFieldRef.ContainerName != c.Name {
			t.Errorf("%s: GOMEMLIMIT must come from the container's limits.memory (downward API)", svc)
		}
		if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
			t.Errorf("%s: no memory limit", svc)
		}

		// Migrations: an init container runs `migrate`; the service does not migrate itself.
		if withDatabase[svc] {
			if len(spec.InitContainers) != 1 || spec.InitContainers[0].Image != c.Image ||
				len(spec.InitContainers[0].Args) != 1 || spec.InitContainers[0].Args[0] != "migrate" {
				t.Errorf("%s: want one init container running `migrate` from the service's image", svc)
			}
			if env["MIGRATE_ON_START"].Value != "false" {
				t.Errorf("%s: MIGRATE_ON_START must be false when the init container migrates", svc)
			}
		}
	}
}

func checkImage(t *testing.T, svc, image string) {
	t.Helper()
	repo, tag, ok := strings.Cut(image, ":")
	if want := images.Repository(images.DefaultRegistry, svc); repo != want {
		t.Errorf("%s: image %s, want repository %s (as `make images` tags it)", svc, image, want)
	}
	if !ok || tag == "" || tag == "latest" {
		t.Errorf("%s: image %s needs a version tag (not latest)", svc, image)
	}
}

// checkDisruptionBudgets: one PDB per Deployment, and none can block a drain.
func checkDisruptionBudgets(t *testing.T, r rendered) {
	for _, d := range r.deployments {
		var found []*policyv1.PodDisruptionBudget
		for _, p := range r.pdbs {
			if selects(p.Spec.Selector, d.Spec.Template.Labels) {
				found = append(found, p)
			}
		}
		if len(found) != 1 {
			t.Errorf("%s: %d PodDisruptionBudgets select its pods, want 1", d.Name, len(found))
			continue
		}
		p := found[0]
		switch {
		case p.Spec.MaxUnavailable != nil:
			if p.Spec.MaxUnavailable.IntValue() < 1 && p.Spec.MaxUnavailable.String() != "100%" {
				t.Errorf("%s: PDB maxUnavailable %s blocks every drain", d.Name, p.Spec.MaxUnavailable.String())
			}
		case p.Spec.MinAvailable != nil:
			replicas := int32(1)
			if d.Spec.Replicas != nil {
				replicas = *d.Spec.Replicas
			}
			if p.Spec.MinAvailable.IntValue() >= int(replicas) {
				t.Errorf("%s: PDB minAvailable %s with %d replicas blocks every drain", d.Name, p.Spec.MinAvailable.String(), replicas)
			}
		}
	}
}

// checkAutoscaling: KEDA owns the dispatcher's count (no replicas on the Deployment), triggers
// authenticate through a TriggerAuthentication whose endpoint is the chart's headless Service,
// and none scales on the throttled bulk lane.
func checkAutoscaling(t *testing.T, r rendered) {
	if len(r.scaled) == 0 {
		t.Fatal("no ScaledObject")
	}
	for _, so := range r.scaled {
		for _, d := range r.deployments {
			if d.Name == so.Spec.ScaleTargetRef.Name && d.Spec.Replicas != nil {
				t.Errorf("Deployment %s sets replicas %d although ScaledObject %s owns its count", d.Name, *d.Spec.Replicas, so.Name)
			}
		}
		for _, tr := range so.Spec.Triggers {
			if tr.Type != "nats-jetstream" {
				continue
			}
			if tr.Metadata["consumer"] == "delivery-workers-bulk" {
				t.Errorf("ScaledObject %s scales on the bulk lane, which is throttled on purpose", so.Name)
			}
			if _, ok := tr.Metadata["natsServerMonitoringEndpoint"]; ok {
				t.Errorf("trigger %s: the endpoint belongs in the TriggerAuthentication", tr.Name)
			}
			if tr.Metadata["account"] == "$G" {
				t.Errorf("trigger %s: account $G", tr.Name)
			}
			if tr.AuthenticationRef == nil {
				t.Errorf("trigger %s has no authenticationRef", tr.Name)
				continue
			}
			ta, ok := r.triggerAuths[tr.AuthenticationRef.Name]
			if !ok {
				t.Errorf("trigger %s: TriggerAuthentication %s not rendered", tr.Name, tr.AuthenticationRef.Name)
				continue
			}
			params := map[string]bool{}
			for _, ref := range ta.Spec.SecretTargetRef {
				params[ref.Parameter] = true
				sec, ok := r.secrets[ref.Name]
				if !ok {
					t.Errorf("TriggerAuthentication %s: Secret %s not rendered (or renamed by a hash suffix)", ta.Name, ref.Name)
					continue
				}
				v := sec.StringData[ref.Key]
				if v == "" {
					v = string(sec.Data[ref.Key])
				}
				if ref.Parameter == "natsServerMonitoringEndpoint" && !strings.Contains(v, "-headless.") {
					t.Errorf("monitoring endpoint %q is not a headless Service: KEDA must reach every NATS server by name", v)
				}
				if ref.Parameter == "account" && (v == "" || v == "$G") {
					t.Errorf("account %q: want the services' account", v)
				}
			}
			if !params["natsServerMonitoringEndpoint"] || !params["account"] {
				t.Errorf("TriggerAuthentication %s must provide the endpoint and the account", ta.Name)
			}
		}
	}
}

// checkNetworkPolicies: default deny for every pod in both directions; admin ports reachable from
// the monitoring namespace only; the dispatcher's egress limited to DNS, NATS, the OTLP
// collector, subscriptions and public addresses.
func checkNetworkPolicies(t *testing.T, r rendered) {
	denyAll := false
	for _, p := range r.policies {
		if len(p.Spec.PodSelector.MatchLabels) == 0 && len(p.Spec.PodSelector.MatchExpressions) == 0 &&
			len(p.Spec.Ingress) == 0 && len(p.Spec.Egress) == 0 && len(p.Spec.PolicyTypes) == 2 {
			denyAll = true
		}
	}
	if !denyAll {
		t.Error("no default-deny NetworkPolicy (empty pod selector, Ingress and Egress, no rules)")
	}
	for _, d := range r.deployments {
		podLabels := d.Spec.Template.Labels
		adminPort := int32(0)
		for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
			if p.Name == "admin" {
				adminPort = p.ContainerPort
			}
		}
		ingressToAdmin := 0
		for _, p := range r.policies {
			if !selects(&p.Spec.PodSelector, podLabels) {
				continue
			}
			for _, rule := range p.Spec.Ingress {
				if !coversPort(rule.Ports, "admin", adminPort) {
					continue
				}
				ingressToAdmin++
				for _, from := range rule.From {
					if from.NamespaceSelector == nil || from.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" || from.PodSelector != nil || from.IPBlock != nil {
						t.Errorf("%s: policy %s lets more than the monitoring namespace reach the admin port", d.Name, p.Name)
					}
				}
				if len(rule.From) == 0 {
					t.Errorf("%s: policy %s opens the admin port to everyone", d.Name, p.Name)
				}
			}
		}
		if ingressToAdmin == 0 {
			t.Errorf("%s: no policy lets monitoring scrape the admin port", d.Name)
		}
		if d.Name != "dispatcher" {
			continue
		}
		for _, p := range r.policies {
			if !selects(&p.Spec.PodSelector, podLabels) {
				continue
			}
			for _, rule := range p.Spec.Egress {
				for _, to := range rule.To {
					if !allowedDispatcherPeer(to, rule.Ports) {
						t.Errorf("dispatcher: policy %s allows egress to %+v", p.Name, to)
					}
				}
				if len(rule.To) == 0 {
					t.Errorf("dispatcher: policy %s allows egress to anywhere", p.Name)
				}
			}
		}
	}
}

func coversPort(ports []networkingv1.NetworkPolicyPort, name string, number int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Port == nil || p.Port.String() == name || p.Port.IntValue() == int(number) {
			return true
		}
	}
	return false
}

func allowedDispatcherPeer(to networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) bool {
	ns := ""
	if to.NamespaceSelector != nil {
		ns = to.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]
	}
	switch {
	case to.IPBlock != nil:
		// Public addresses: the whole space minus the private, loopback and link-local ranges.
		need := []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8", "100.64.0.0/10"}
		if to.IPBlock.CIDR == "::/0" {
			need = []string{"fc00::/7", "fe80::/10", "::1/128"}
		}
		for _, n := range need {
			if !contains(to.IPBlock.Except, n) {
				return false
			}
		}
		return true
	case ns == "kube-system":
		return to.PodSelector != nil && to.PodSelector.MatchLabels["k8s-app"] == "kube-dns" && onlyPort(ports, 53)
	case ns == "nats":
		return onlyPort(ports, 4222)
	case ns == "observability":
		return onlyPort(ports, 4317)
	case to.NamespaceSelector == nil && to.PodSelector != nil:
		return to.PodSelector.MatchLabels["app.kubernetes.io/name"] == "subscriptions" && onlyPort(ports, 7104)
	}
	return false
}

func onlyPort(ports []networkingv1.NetworkPolicyPort, n int) bool {
	if len(ports) == 0 {
		return false
	}
	for _, p := range ports {
		if p.Port == nil || p.Port.IntValue() != n {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// checkClientBalancing: gRPC clients dial dns:/// names of headless Services.
func checkClientBalancing(t *testing.T, r rendered) {
	for _, cm := range r.configMaps {
		for _, k := range []string{"SUBSCRIPTIONS_ADDR", "CONTACTS_ADDR"} {
			v, ok := cm.Data[k]
			if !ok {
				continue
			}
			host, _, err := net.SplitHostPort(strings.TrimPrefix(v, "dns:///"))
			if !strings.HasPrefix(v, "dns:///") || err != nil {
				t.Errorf("%s=%q: want dns:///<headless service>:<port>", k, v)
				continue
			}
			svc, ok := r.services[host]
			if !ok || svc.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Errorf("%s=%q: %s is not a headless Service of this overlay", k, v, host)
			}
		}
	}
}

// Production: streams replicated three times, three PostgreSQL instances.
func TestProdReplicatesState(t *testing.T) {
	t.Parallel()
	r := render(t, filepath.Join(root, "overlays", "prod"))
	for _, cm := range r.configMaps {
		if v := cm.Data["STREAM_REPLICAS"]; v != "3" {
			t.Errorf("ConfigMap %s: STREAM_REPLICAS %q, want 3", cm.Name, v)
		}
	}
	for _, c := range r.clusters {
		if c.Spec.Instances < 3 {
			t.Errorf("Cluster %s: %d instances, want 3", c.Name, c.Spec.Instances)
		}
	}
	if len(r.clusters) == 0 {
		t.Error("no PostgreSQL Cluster")
	}
}

// The NATS chart values: a 3-node JetStream cluster on PVCs, monitoring on, TLS switchable, one
// user per service with least-privilege permissions.
func TestNATSValues(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(root, "nats", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Config struct {
			Cluster struct {
				Enabled  bool `json:"enabled"`
				Replicas int  `json:"replicas"`
			} `json:"cluster"`
			JetStream struct {
				Enabled   bool `json:"enabled"`
				FileStore struct {
					Enabled bool `json:"enabled"`
					PVC     struct {
						Enabled bool `json:"enabled"`
					} `json:"pvc"`
				} `json:"fileStore"`
			} `json:"jetstream"`
			Monitor struct {
				Enabled bool `json:"enabled"`
			} `json:"monitor"`
			NATS struct {
				TLS map[string]any `json:"tls"`
			} `json:"nats"`
			Merge struct {
				Accounts map[string]struct {
					Users []struct {
						User        string `json:"user"`
						Password    string `json:"password"`
						Permissions *struct {
							Publish   struct{ Allow []string } `json:"publish"`
							Subscribe struct{ Allow []string } `json:"subscribe"`
						} `json:"permissions"`
					} `json:"users"`
				} `json:"accounts"`
			} `json:"merge"`
		} `json:"config"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	c := v.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 {
		t.Errorf("cluster: enabled %v replicas %d, want a 3-node cluster", c.Cluster.Enabled, c.Cluster.Replicas)
	}
	if !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled || !c.JetStream.FileStore.PVC.Enabled {
		t.Error("JetStream must be on, with file storage on PVCs")
	}
	if !c.Monitor.Enabled {
		t.Error("monitoring must be on (KEDA and Prometheus read it)")
	}
	if _, ok := c.NATS.TLS["enabled"]; !ok {
		t.Error("config.nats.tls.enabled must be present, the switch values-tls.yaml flips")
	}
	users := map[string]bool{}
	for _, u := range c.Merge.Accounts["WEBHOOKS"].Users {
		users[u.User] = true
		if !strings.HasPrefix(u.Password, "<< $") {
			t.Errorf("user %s: password must come from the environment (a Secret), not the values file", u.User)
		}
		if u.Permissions == nil {
			t.Errorf("user %s has no permissions", u.User)
			continue
		}
		for _, s := range append(u.Permissions.Publish.Allow, u.Permissions.Subscribe.Allow...) {
			if s == ">" || s == "$JS.API.>" || s == "$JS.>" {
				t.Errorf("user %s may use %q: not least privilege", u.User, s)
			}
		}
	}
	for _, svc := range images.Services {
		if !users[svc] {
			t.Errorf("no NATS user for %s in account WEBHOOKS", svc)
		}
	}
}
