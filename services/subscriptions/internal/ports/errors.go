// Package ports exposes the use cases over gRPC (WebhookService for account admins,
// WebhookConfigService and AccountService for internal callers) and consumes attempt records
// from JetStream.
package ports

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/customertext/webhooks/libs/server"
	"github.com/customertext/webhooks/services/subscriptions/internal/app"
	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// toStatus maps use-case errors to gRPC status codes, in one place; the rest goes to the
// platform's rule (server.Status): UNAVAILABLE when a dependency is down, INTERNAL without
// detail for bugs.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	var ve *domain.ValidationError
	switch {
	case errors.As(err, &ve):
		st := status.New(codes.InvalidArgument, ve.Error())
		if d, derr := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: ve.Field, Description: ve.Reason},
		}}); derr == nil {
			st = d
		}
		return st.Err()
	case errors.Is(err, domain.ErrNotFound):
		return status.Error(codes.NotFound, "not found")
	case errors.Is(err, domain.ErrLimitReached):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, domain.ErrPrecondition):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, app.ErrUnauthenticated):
		return status.Error(codes.Unauthenticated, "missing or unknown API key")
	}
	return server.Status(ctx, log, err)
}
