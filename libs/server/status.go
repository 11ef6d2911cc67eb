package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Every service maps its own domain errors (not found, invalid, ...) to gRPC codes and falls back
// to Status for the rest, so that one rule decides between a retryable outage and a bug for the
// whole platform:
//
//   - the caller's context ended: CANCELLED or DEADLINE_EXCEEDED;
//   - a dependency cannot be reached (Unavailable reports true): UNAVAILABLE;
//   - anything else is a bug: INTERNAL, logged, without detail for the caller.

// unavailableNATS are the nats.go errors that mean the server or the responder is out of reach.
var unavailableNATS = []error{
	nats.ErrNoResponders, nats.ErrConnectionClosed, nats.ErrTimeout, nats.ErrDisconnected,
	nats.ErrConnectionDraining, nats.ErrConnectionReconnecting, nats.ErrNoServers, nats.ErrStaleConnection,
	jetstream.ErrNoStreamResponse, jetstream.ErrJetStreamNotEnabled,
}

// unavailableSQLStates are PostgreSQL error codes of a server that is going away, starting up or
// full: connection exceptions (class 08), operator intervention (57P01-57P05) and
// too_many_connections.
func unavailableSQLState(code string) bool {
	switch {
	case len(code) == 5 && code[:2] == "08":
		return true
	case code == "57P01", code == "57P02", code == "57P03", code == "57P05", code == "53300":
		return true
	}
	return false
}

// Unavailable reports whether err says that a dependency (PostgreSQL, NATS, another of the
// platform's services) cannot be reached right now, as opposed to a bug: connection errors, lost
// connections, network errors and timeouts, the PostgreSQL errors of a server shutting down or
// starting, NATS without responders, and UNAVAILABLE answered by another service. A context
// deadline counts only when it is not the caller's own (Status checks the caller's first): it is
// then one of ours, such as a bounded wait for a pooled connection.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var connect *pgconn.ConnectError
	var pgErr *pgconn.PgError
	var netErr net.Error
	switch {
	case errors.As(err, &pgErr):
		return unavailableSQLState(pgErr.Code)
	case errors.As(err, &connect), errors.As(err, &netErr):
		return true
	case pgconn.SafeToRetry(err), pgconn.Timeout(err):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		// A driver that loses its server mid-conversation reads EOF.
		return true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return true
	}
	for _, e := range unavailableNATS {
		if errors.Is(err, e) {
			return true
		}
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Unavailable, codes.DeadlineExceeded:
			return true
		}
	}
	return false
}

// Status is the fallback of every service's mapping of errors to gRPC statuses (see the rule
// above). A gRPC status answered by another service counts as unavailable only when it was
// UNAVAILABLE or DEADLINE_EXCEEDED; any other one is our bug here.
func Status(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	if Unavailable(err) {
		log.WarnContext(ctx, "request failed: a dependency is unavailable", "error", err)
		return status.Error(codes.Unavailable, "service temporarily unavailable: a dependency cannot be reached; retry with backoff")
	}
	log.ErrorContext(ctx, "request failed", "error", err)
	return status.Error(codes.Internal, "internal error")
}

// StatusInterceptor turns a handler's error that is not a gRPC status into one with Status, so
// that no RPC answers UNKNOWN with an internal message, and an outage is UNAVAILABLE even where
// a handler returned the error as it came.
func StatusInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err == nil {
			return resp, nil
		}
		if _, ok := status.FromError(err); ok {
			return resp, err
		}
		return resp, Status(ctx, log, err)
	}
}
