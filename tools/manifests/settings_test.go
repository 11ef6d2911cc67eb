package manifests_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The settings the dev overlay gives each container (its ConfigMap, its Secret, its env) are
// accepted by the service's own configuration parsing: the real binary gets past it and fails
// only where it reaches for the cluster's PostgreSQL or NATS, which do not exist here.
func TestServicesAcceptTheRenderedSettings(t *testing.T) {
	t.Parallel()
	r := render(t, filepath.Join(root, "overlays", "dev"))
	bin := t.TempDir()
	for _, d := range r.deployments {
		svc := d.Name
		t.Run(svc, func(t *testing.T) {
			build := exec.Command("go", "build", "-o", filepath.Join(bin, svc), ".")
			build.Dir = filepath.Join("..", "..", "services", svc)
			// The services build in the repository's workspace, not in this module's GOWORK=off.
			build.Env = append(os.Environ(), "GOWORK=", "GOFLAGS=-buildvcs=false")
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("build %s: %v\n%s", svc, err, out)
			}
			c := d.Spec.Template.Spec.Containers[0]
			env := []string{"PATH=" + os.Getenv("PATH")}
			for _, ef := range c.EnvFrom {
				switch {
				case ef.ConfigMapRef != nil:
					for k, v := range r.configMaps[ef.ConfigMapRef.Name].Data {
						env = append(env, k+"="+v)
					}
				case ef.SecretRef != nil:
					sec, ok := r.secrets[ef.SecretRef.Name]
					if !ok {
						t.Fatalf("Secret %s not rendered", ef.SecretRef.Name)
					}
					for k, v := range secretData(sec) {
						env = append(env, k+"="+v)
					}
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					env = append(env, e.Name+"="+e.Value)
				}
			}
			// Listen on free loopback ports instead of the container's 0.0.0.0.
			env = append(env, "GRPC_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0", "HTTP_ADDR=127.0.0.1:0", "GOMEMLIMIT=512MiB")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			run := exec.CommandContext(ctx, filepath.Join(bin, svc))
			run.Env = env
			out, _ := run.CombinedOutput()
			msg := string(out)
			for _, bad := range []string{"invalid configuration", "parse flags", "config:", "want host:port", "required", "Usage of"} {
				if strings.Contains(msg, bad) {
					t.Fatalf("%s refused its rendered settings:\n%s", svc, msg)
				}
			}
			if !strings.Contains(msg, "webhooks-pg-rw") && !strings.Contains(msg, "nats.nats.svc") {
				t.Errorf("%s did not get as far as connecting to the cluster's PostgreSQL or NATS:\n%s", svc, msg)
			}
		})
	}
}

func secretData(s *corev1.Secret) map[string]string {
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	for k, v := range s.StringData {
		out[k] = v
	}
	return out
}
