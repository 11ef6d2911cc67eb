package server_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/customertext/webhooks/libs/server"
	"github.com/customertext/webhooks/libs/telemetry"
)

// TestUndecodableRequestIsInvalidArgument sends a request whose string field is not UTF-8 (as
// bytes with the same field number, since the Go client refuses to encode such a string) and
// wants INVALID_ARGUMENT, which a caller knows not to retry, where grpc-go answers INTERNAL.
func TestUndecodableRequestIsInvalidArgument(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr, err := telemetry.NewTracing(ctx, "test", "dev", "")
	if err != nil {
		t.Fatal(err)
	}
	var reached atomic.Bool
	g, err := server.NewGRPC(telemetry.NewRegistry(), tr,
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			reached.Store(true)
			return h(ctx, req)
		})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Serve(ctx, lis, 5*time.Second) }()
	defer func() { cancel(); <-done }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// HealthCheckRequest field 1 is the string "service".
	err = conn.Invoke(ctx, "/grpc.health.v1.Health/Check", wrapperspb.Bytes([]byte("\xff\xfe")), &healthpb.HealthCheckResponse{})
	if got := status.Code(err); got != codes.InvalidArgument {
		t.Errorf("invalid UTF-8: got %s (%v), want %s", got, err, codes.InvalidArgument)
	}
	if reached.Load() {
		t.Errorf("the undecodable request reached the service's interceptors, want it stopped before")
	}
	// A well-formed request still works.
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("valid request: %v", err)
	}
}
