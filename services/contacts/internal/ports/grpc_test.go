package ports

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	"github.com/customertext/webhooks/services/contacts/internal/app"
	"github.com/customertext/webhooks/services/contacts/internal/domain"
)

// errStore fails every read with err.
type errStore struct {
	app.Store
	err error
}

func (s errStore) Get(context.Context, string, string) (domain.Contact, error) {
	return domain.Contact{}, s.err
}

func TestErrorsMapToCodes(t *testing.T) {
	t.Parallel()
	expired, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	tests := []struct {
		name     string
		ctx      context.Context
		err      error
		wantCode codes.Code
		wantMsg  string
	}{
		{"not found", nil, fmt.Errorf("get contact: %w", domain.ErrNotFound), codes.NotFound, "contact not found"},
		{"invalid", nil, domain.Invalid("phone", "is required"), codes.InvalidArgument, "phone: is required"},
		{"duplicate", nil, domain.ErrDuplicatePhone, codes.AlreadyExists, "phone"},
		{"the caller's deadline", expired, fmt.Errorf("query: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "deadline"},
		{"our own deadline is an outage", nil, fmt.Errorf("acquire: %w", context.DeadlineExceeded), codes.Unavailable, "unavailable"},
		{"database unreachable", nil, fmt.Errorf("get contact: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), codes.Unavailable, "unavailable"},
		{"unexpected errors hide their details", nil, errors.New("dial postgres://u:hunter2@db"), codes.Internal, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := app.NewMetrics(prometheus.NewRegistry())
			if err != nil {
				t.Fatalf("metrics: %v", err)
			}
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			g := NewGRPC(app.New(app.Deps{Store: errStore{err: tt.err}, Logger: logger, Metrics: m}), logger)
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			_, err = g.GetContact(ctx, &contactsv1.GetContactRequest{AccountId: "acct_1", Id: "ct_1"})
			st := status.Convert(err)
			if st.Code() != tt.wantCode || !strings.Contains(st.Message(), tt.wantMsg) {
				t.Errorf("status = %v %q, want %v containing %q", st.Code(), st.Message(), tt.wantCode, tt.wantMsg)
			}
			if strings.Contains(st.Message(), "hunter2") {
				t.Errorf("status message leaks the cause: %q", st.Message())
			}
			if tt.wantCode == codes.Internal && !strings.Contains(logs.String(), "request failed") {
				t.Errorf("internal error was not logged; logs: %s", logs.String())
			}
		})
	}
}

func TestNilContactIsInvalid(t *testing.T) {
	t.Parallel()
	g := NewGRPC(nil, slog.New(slog.DiscardHandler))
	_, err := g.CreateContact(context.Background(), &contactsv1.CreateContactRequest{AccountId: "acct_1"})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("CreateContact without contact: code %v, want InvalidArgument", status.Code(err))
	}
	_, err = g.UpdateContact(context.Background(), &contactsv1.UpdateContactRequest{AccountId: "acct_1"})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("UpdateContact without contact: code %v, want InvalidArgument", status.Code(err))
	}
}
