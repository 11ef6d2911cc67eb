package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/customertext/webhooks/libs/server"
	"github.com/customertext/webhooks/libs/telemetry"
)

func TestGRPCAndAdminLifecycle(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := telemetry.NewRegistry()
	tr, err := telemetry.NewTracing(ctx, "test", "dev", "")
	if err != nil {
		t.Fatal(err)
	}
	g, err := server.NewGRPC(reg, tr)
	if err != nil {
		t.Fatal(err)
	}
	glis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	alis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var dbUp atomic.Bool
	admin := server.NewAdmin(reg, slog.New(slog.NewTextHandler(io.Discard, nil)), map[string]server.Check{
		"database": func(context.Context) error {
			if !dbUp.Load() {
				return errors.New("down")
			}
			return nil
		},
	})
	gdone := make(chan error, 1)
	adone := make(chan error, 1)
	go func() { gdone <- g.Serve(ctx, glis, 5*time.Second) }()
	go func() { adone <- server.ServeHTTP(ctx, alis, admin, 5*time.Second) }()

	conn, err := grpc.NewClient(glis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: got %v, want SERVING", resp.GetStatus())
	}

	base := "http://" + alis.Addr().String()
	get := func(path string) (int, string) {
		t.Helper()
		r, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: got %d, want 200", code)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "database") {
		t.Errorf("/readyz with the database down: got %d %q, want 503 naming database", code, body)
	}
	dbUp.Store(true)
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz: got %d, want 200", code)
	}
	if _, body := get("/metrics"); !strings.Contains(body, `grpc_server_handled_total{grpc_code="OK",grpc_method="/grpc.health.v1.Health/Check"} 1`) {
		t.Errorf("/metrics lacks the health call:\n%s", body)
	}

	// Profiles are never on the admin port, which the cluster's monitoring can reach.
	if code, _ := get("/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ on the admin port: got %d, want 404", code)
	}

	cancel()
	for name, ch := range map[string]chan error{"grpc": gdone, "admin": adone} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("%s serve returned %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not stop", name)
		}
	}
}
