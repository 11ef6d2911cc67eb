package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	// A real connect error, as pgx returns it when nothing listens.
	_, connectErr := pgconn.Connect(context.Background(), "postgres://u@127.0.0.1:1/db?connect_timeout=5")
	if connectErr == nil {
		t.Fatal("connect to port 1 succeeded, want an error")
	}
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"pgx connect refused", fmt.Errorf("create contact: %w", connectErr), codes.Unavailable},
		{"net dial refused", fmt.Errorf("query: %w", refused), codes.Unavailable},
		{"lost connection", fmt.Errorf("receive: %w", io.ErrUnexpectedEOF), codes.Unavailable},
		{"server shutting down", &pgconn.PgError{Code: "57P01"}, codes.Unavailable},
		{"server starting", &pgconn.PgError{Code: "57P03"}, codes.Unavailable},
		{"too many connections", &pgconn.PgError{Code: "53300"}, codes.Unavailable},
		{"our own deadline (pool acquire)", fmt.Errorf("acquire: %w", context.DeadlineExceeded), codes.Unavailable},
		{"nats no responders", fmt.Errorf("request: %w", nats.ErrNoResponders), codes.Unavailable},
		{"nats closed", nats.ErrConnectionClosed, codes.Unavailable},
		{"nats timeout", fmt.Errorf("publish: %w", nats.ErrTimeout), codes.Unavailable},
		{"downstream unavailable", status.Error(codes.Unavailable, "contacts down"), codes.Unavailable},
		{"syntax error is a bug", &pgconn.PgError{Code: "42601"}, codes.Internal},
		{"unique violation unmapped is a bug", &pgconn.PgError{Code: "23505"}, codes.Internal},
		{"plain bug", errors.New("nil map"), codes.Internal},
		{"downstream internal", status.Error(codes.Internal, "boom"), codes.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Status(context.Background(), slog.New(slog.DiscardHandler), tt.err)
			if got := status.Code(err); got != tt.want {
				t.Errorf("Status(%v): got %s, want %s", tt.err, got, tt.want)
			}
		})
	}
}

func TestStatusCallerContextFirst(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := status.Code(Status(ctx, log, context.Canceled)); got != codes.Canceled {
		t.Errorf("canceled caller: got %s, want %s", got, codes.Canceled)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 0)
	defer cancel()
	<-ctx.Done()
	if got := status.Code(Status(ctx, log, fmt.Errorf("q: %w", context.DeadlineExceeded))); got != codes.DeadlineExceeded {
		t.Errorf("caller's deadline: got %s, want %s", got, codes.DeadlineExceeded)
	}
	if err := Status(context.Background(), log, nil); err != nil {
		t.Errorf("Status(nil): got %v, want nil", err)
	}
}
