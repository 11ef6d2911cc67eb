package ports

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/customertext/webhooks/libs/auth"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/services/subscriptions/internal/app"
	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// Authenticator maps an account API key to its principal.
type Authenticator interface {
	Authenticate(ctx context.Context, key string) (domain.Principal, error)
}

type principalKey struct{}

func principalFrom(ctx context.Context) (domain.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(domain.Principal)
	return p, ok
}

var webhookServicePrefix = "/" + webhooksv1.WebhookService_ServiceDesc.ServiceName + "/"

// AuthInterceptor authenticates every call: WebhookService methods need an account API key of an
// admin; every other method (the internal services) needs the service credential; health and
// reflection need nothing.
func AuthInterceptor(authn Authenticator, serviceToken string, log *slog.Logger) grpc.UnaryServerInterceptor {
	service := auth.ServiceInterceptor(serviceToken)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, webhookServicePrefix) {
			return service(ctx, req, info, handler)
		}
		key, ok := auth.BearerFromContext(ctx)
		if !ok {
			return nil, status.Error(codes.Unauthenticated, "missing credentials: send \"authorization: Bearer <account API key>\"")
		}
		p, err := authn.Authenticate(ctx, key)
		if errors.Is(err, app.ErrUnauthenticated) {
			return nil, status.Error(codes.Unauthenticated, "unknown API key")
		}
		if err != nil {
			return nil, toStatus(ctx, log, err)
		}
		if p.Role != domain.RoleAdmin {
			return nil, status.Error(codes.PermissionDenied, fmt.Sprintf(
				"permission denied: only account admins may use the webhook settings; this API key's role is %s", p.Role))
		}
		return handler(context.WithValue(ctx, principalKey{}, p), req)
	}
}
