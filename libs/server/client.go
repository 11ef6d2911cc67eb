package server

import (
	"fmt"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/customertext/webhooks/libs/auth"
	"github.com/customertext/webhooks/libs/telemetry"
)

// roundRobin spreads calls over every address the target resolves to. With a headless Service
// (dns:///subscriptions-headless:7104) that is every ready replica; the servers' MaxConnectionAge
// makes the client re-resolve, so replicas added by a scale-up get their share within minutes.
const roundRobin = `{"loadBalancingConfig":[{"round_robin":{}}]}`

// DialInternal opens a client connection to another service of the platform: the service
// credential on every call, the caller's trace carried along, and calls balanced over every
// address addr resolves to. Plaintext, as between services on the cluster network (a mesh
// provides TLS).
func DialInternal(addr, serviceToken string, tr *telemetry.Tracing) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithDefaultServiceConfig(roundRobin),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.Bearer(serviceToken)),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(tr.Provider), otelgrpc.WithPropagators(tr.Propagator))))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn, nil
}
