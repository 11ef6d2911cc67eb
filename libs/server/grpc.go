// Package server provides the lifecycle pieces every service shares: a gRPC server with health,
// reflection, tracing and metrics; an admin HTTP server with /metrics, /healthz and /readyz; and
// Serve functions that stop gracefully when their context ends.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/customertext/webhooks/libs/telemetry"
)

// MaxConnectionAge is how long a client connection to a gRPC server lives before the server asks
// the client to reconnect (in-flight calls get 30 s more).
const MaxConnectionAge = 5 * time.Minute

// GRPC is a gRPC server with health and reflection registered.
type GRPC struct {
	Server *grpc.Server
	Health *health.Server
}

// NewGRPC builds a server whose calls are traced and counted; extra interceptors (such as
// authentication) run after the metrics interceptor, so rejected calls are counted too.
func NewGRPC(reg prometheus.Registerer, tr *telemetry.Tracing, extra ...grpc.UnaryServerInterceptor) (*GRPC, error) {
	handled := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "grpc_server_handled_total",
		Help: "RPCs completed on the server, by method and status code.",
	}, []string{"grpc_method", "grpc_code"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "grpc_server_handling_seconds",
		Help:    "Time to handle an RPC, by method.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
	}, []string{"grpc_method"})
	for _, c := range []prometheus.Collector{handled, latency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register grpc metrics: %w", err)
		}
	}
	metrics := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		handled.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
		latency.WithLabelValues(info.FullMethod).Observe(time.Since(start).Seconds())
		return resp, err
	}
	chain := append([]grpc.UnaryServerInterceptor{metrics, rejectUndecodable}, extra...)
	s := grpc.NewServer(
		// Clients re-resolve when a connection ends: without an age limit a client would stay on
		// the replicas it found first and never use the ones a scale-up adds.
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionAge:      MaxConnectionAge,
			MaxConnectionAgeGrace: 30 * time.Second,
		}),
		grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(tr.Provider), otelgrpc.WithPropagators(tr.Propagator))),
		grpc.ForceServerCodecV2(newCodec()), // undecodable requests: see codec.go
		grpc.ChainUnaryInterceptor(chain...),
		grpc.ChainStreamInterceptor(rejectUndecodableStream),
	)
	h := health.NewServer()
	healthpb.RegisterHealthServer(s, h)
	reflection.Register(s)
	return &GRPC{Server: s, Health: h}, nil
}

// Serve serves on lis until ctx ends, then drains in-flight calls for at most grace before
// forcing the stop.
func (g *GRPC) Serve(ctx context.Context, lis net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- g.Server.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve grpc: %w", err)
	case <-ctx.Done():
	}
	g.Health.Shutdown()
	done := make(chan struct{})
	go func() { g.Server.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		g.Server.Stop()
		<-done
	}
	<-errc
	return nil
}

// Check reports whether a dependency is usable.
type Check func(ctx context.Context) error

// NewAdmin returns the admin HTTP handler: /metrics, /healthz (the process is alive), /readyz
// (every check passes within 2 s). Profiles are not on it: see NewPprof.
func NewAdmin(reg prometheus.Gatherer, logger *slog.Logger, checks map[string]Check) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		var failed []string
		for name, check := range checks {
			if err := check(ctx); err != nil {
				logger.Warn("readiness check failed", "check", name, "error", err)
				failed = append(failed, name)
			}
		}
		if len(failed) > 0 {
			http.Error(w, fmt.Sprintf("not ready: %v", failed), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// ServeHTTP serves h on lis until ctx ends, then shuts down within grace.
func ServeHTTP(ctx context.Context, lis net.Listener, h http.Handler, grace time.Duration) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}
