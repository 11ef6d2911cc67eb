package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"time"
)

// NewPprof returns the handler of /debug/pprof/. It is served on its own listener, never on the
// admin port: the admin port is reachable by the cluster's monitoring, profiles only by someone
// with a shell next to the process (kubectl port-forward), and only when PPROF_ADDR asks for it.
func NewPprof() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// CheckLoopback returns an error unless addr is host:port with a loopback host (127.0.0.0/8, ::1
// or localhost): the pprof listener must never be reachable from another machine.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port, got %q", addr)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("want a loopback host (127.0.0.1, ::1 or localhost), got %q", addr)
	}
	return nil
}

// ServePprof serves NewPprof on addr until ctx ends. An empty addr serves nothing and returns at
// once, so a service can run it unconditionally in its lifecycle group.
func ServePprof(ctx context.Context, addr string, grace time.Duration) error {
	if addr == "" {
		return nil
	}
	if err := CheckLoopback(addr); err != nil {
		return fmt.Errorf("pprof address: %w", err)
	}
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen pprof: %w", err)
	}
	return ServeHTTP(ctx, lis, NewPprof(), grace)
}
