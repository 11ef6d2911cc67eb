package server_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/customertext/webhooks/libs/server"
	"github.com/customertext/webhooks/libs/telemetry"
)

// A client of DialInternal spreads its calls over every address its target resolves to (as a
// headless Service's DNS name resolves to every replica), instead of pinning to the first.
func TestDialInternalBalancesOverReplicas(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr, err := telemetry.NewTracing(ctx, "test", "dev", "")
	if err != nil {
		t.Fatal(err)
	}
	var addrs []resolver.Address
	var regs []*prometheus.Registry
	for range 2 {
		reg := prometheus.NewRegistry()
		g, err := server.NewGRPC(reg, tr)
		if err != nil {
			t.Fatal(err)
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- g.Serve(ctx, lis, time.Second) }()
		t.Cleanup(func() { cancel(); <-done })
		addrs = append(addrs, resolver.Address{Addr: lis.Addr().String()})
		regs = append(regs, reg)
	}
	r := manual.NewBuilderWithScheme("replicas")
	r.InitialState(resolver.State{Addresses: addrs})
	resolver.Register(r)
	conn, err := server.DialInternal("replicas:///subscriptions", "tok", tr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	for range 20 {
		if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	for i, reg := range regs {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var calls float64
		for _, mf := range mfs {
			if mf.GetName() != "grpc_server_handled_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "grpc_method" && strings.HasSuffix(l.GetValue(), "/Check") {
						calls += m.GetCounter().GetValue()
					}
				}
			}
		}
		if calls == 0 {
			t.Errorf("replica %d served none of 20 calls: the client pins to one replica", i)
		}
	}
}
