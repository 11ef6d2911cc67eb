package auth

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestServiceInterceptor(t *testing.T) {
	t.Parallel()
	ic := ServiceInterceptor("s3cret")
	ok := func(context.Context, any) (any, error) { return "ok", nil }
	tests := []struct {
		name   string
		method string
		md     metadata.MD
		want   codes.Code
	}{
		{"valid", "/x.v1.S/M", metadata.Pairs("authorization", "Bearer s3cret"), codes.OK},
		{"missing", "/x.v1.S/M", nil, codes.Unauthenticated},
		{"wrong", "/x.v1.S/M", metadata.Pairs("authorization", "Bearer nope"), codes.Unauthenticated},
		{"not bearer", "/x.v1.S/M", metadata.Pairs("authorization", "s3cret"), codes.Unauthenticated},
		{"scheme lower case (RFC 7235)", "/x.v1.S/M", metadata.Pairs("authorization", "bearer s3cret"), codes.OK},
		{"scheme upper case", "/x.v1.S/M", metadata.Pairs("authorization", "BEARER s3cret"), codes.OK},
		{"several spaces", "/x.v1.S/M", metadata.Pairs("authorization", "Bearer   s3cret"), codes.OK},
		{"other scheme", "/x.v1.S/M", metadata.Pairs("authorization", "Basic s3cret"), codes.Unauthenticated},
		{"scheme glued to token", "/x.v1.S/M", metadata.Pairs("authorization", "Bearers3cret"), codes.Unauthenticated},
		{"health needs none", "/grpc.health.v1.Health/Check", nil, codes.OK},
		{"reflection needs none", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", nil, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.md != nil {
				ctx = metadata.NewIncomingContext(ctx, tt.md)
			}
			_, err := ic(ctx, nil, &grpc.UnaryServerInfo{FullMethod: tt.method}, ok)
			if got := status.Code(err); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	// An empty configured credential never authenticates anybody.
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "))
	if _, err := ServiceInterceptor("")(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/x.v1.S/M"}, ok); status.Code(err) != codes.Unauthenticated {
		t.Errorf("empty credential: got %v, want Unauthenticated", err)
	}
}
