// Package auth carries credentials over gRPC metadata: account API keys for the public webhook
// API and the service credential that internal callers (dispatchers, the product backend,
// operators' tools) present.
package auth

import (
	"context"
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// BearerFromContext returns the token of an incoming "authorization: Bearer <token>" header.
// The scheme name is case-insensitive and may be followed by several spaces (RFC 7235 2.1).
func BearerFromContext(ctx context.Context) (string, bool) {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return "", false
	}
	for _, v := range md.Get("authorization") {
		scheme, tok, ok := strings.Cut(v, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			continue
		}
		if tok = strings.TrimLeft(tok, " "); tok != "" {
			return tok, true
		}
	}
	return "", false
}

// ServiceInterceptor rejects every call whose bearer token is not the service credential, except
// the gRPC health and reflection services, which probes and grpcurl call without credentials.
func ServiceInterceptor(credential string) grpc.UnaryServerInterceptor {
	want := []byte(credential)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if IsPublicMethod(info.FullMethod) {
			return handler(ctx, req)
		}
		tok, ok := BearerFromContext(ctx)
		if !ok {
			return nil, status.Error(codes.Unauthenticated, "missing credentials: send \"authorization: Bearer <service credential>\"")
		}
		if len(want) == 0 || subtle.ConstantTimeCompare([]byte(tok), want) != 1 {
			return nil, status.Error(codes.Unauthenticated, "invalid service credential")
		}
		return handler(ctx, req)
	}
}

// IsPublicMethod reports whether a full gRPC method name needs no credentials.
func IsPublicMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.")
}

// Bearer is per-RPC client credentials that send a bearer token. It allows plaintext transport
// because services talk over the cluster network or loopback; in production a mesh provides TLS.
type Bearer string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b Bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (Bearer) RequireTransportSecurity() bool { return false }

var _ credentials.PerRPCCredentials = Bearer("")
