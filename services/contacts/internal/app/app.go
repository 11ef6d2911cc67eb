// Package app holds the contacts service's use cases, one file each. Every use case that changes a
// contact writes its event to the transactional outbox in the same transaction as the change.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/customertext/webhooks/libs/event"
	"github.com/customertext/webhooks/services/contacts/internal/domain"
)

// Store is the persistence the use cases need.
type Store interface {
	// InTx runs fn in one transaction, committed when fn returns nil.
	InTx(ctx context.Context, fn func(tx Tx) error) error
	Get(ctx context.Context, accountID, id string) (domain.Contact, error)
	GetByPhone(ctx context.Context, accountID, phone string) (domain.Contact, error)
	// List returns up to limit contacts with ids after afterID, by id, optionally only members of
	// the group named group.
	List(ctx context.Context, accountID, group, afterID string, limit int) ([]domain.Contact, error)
	ListGroups(ctx context.Context, accountID string) ([]domain.Group, error)
}

// Tx is the work done inside one transaction.
type Tx interface {
	// Insert adds c and its group memberships (creating missing groups) and returns c with its
	// groups spelled as stored; domain.ErrDuplicatePhone when the account already has the phone.
	Insert(ctx context.Context, c domain.Contact) (domain.Contact, error)
	// ExistingPhones returns which of phones the account's contacts already have.
	ExistingPhones(ctx context.Context, accountID string, phones []string) (map[string]bool, error)
	// GetForUpdate reads and locks a contact; domain.ErrNotFound when absent.
	GetForUpdate(ctx context.Context, accountID, id string) (domain.Contact, error)
	// Update writes c's fields, replaces its memberships with c.Groups (creating missing groups)
	// and returns c with its groups spelled as stored.
	Update(ctx context.Context, c domain.Contact) (domain.Contact, error)
	// AddGroups adds memberships (creating missing groups) and returns the names of the groups
	// the contact was not yet in, spelled as stored.
	AddGroups(ctx context.Context, accountID, contactID string, names []string) ([]string, error)
	// Delete removes a contact; domain.ErrNotFound when absent.
	Delete(ctx context.Context, accountID, id string) error
	// CreateGroup adds a group; domain.ErrGroupExists when the name is taken.
	CreateGroup(ctx context.Context, accountID string, g domain.Group) error
	// AddEvent writes env to the outbox.
	AddEvent(ctx context.Context, env event.Envelope, headers nats.Header) error
}

// Metrics are the service's own counters (no per-account labels).
type Metrics struct {
	created       *prometheus.CounterVec
	updated       prometheus.Counter
	imported      prometheus.Counter
	importRowErrs prometheus.Counter
}

// NewMetrics registers the contacts counters.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		created: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "contacts_created_total",
			Help: "Contacts created, by new_contact source."}, []string{"source"}),
		updated: prometheus.NewCounter(prometheus.CounterOpts{Name: "contacts_updated_total",
			Help: "Contact updates that changed at least one field."}),
		imported: prometheus.NewCounter(prometheus.CounterOpts{Name: "contacts_imported_total",
			Help: "Contacts created by CSV imports."}),
		importRowErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "contacts_import_row_errors_total",
			Help: "CSV import rows rejected."}),
	}
	for _, c := range []prometheus.Collector{m.created, m.updated, m.imported, m.importRowErrs} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register contacts metrics: %w", err)
		}
	}
	for _, src := range []domain.Source{domain.SourceManual, domain.SourceImport, domain.SourceKeywordOptIn, domain.SourceInbound} {
		m.created.WithLabelValues(string(src))
	}
	return m, nil
}

// Service runs the use cases.
type Service struct {
	store   Store
	logger  *slog.Logger
	metrics *Metrics
	// inject writes the caller's trace context into the headers of an outgoing event.
	inject func(ctx context.Context, h nats.Header)
	now    func() time.Time
}

// Deps are the Service's collaborators; Now defaults to time.Now.
type Deps struct {
	Store   Store
	Logger  *slog.Logger
	Metrics *Metrics
	Inject  func(ctx context.Context, h nats.Header)
	Now     func() time.Time
}

// New builds a Service.
func New(d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Inject == nil {
		d.Inject = func(context.Context, nats.Header) {}
	}
	return &Service{store: d.Store, logger: d.Logger, metrics: d.Metrics, inject: d.Inject, now: d.Now}
}

// emit adds an event with payload to the outbox inside tx, carrying ctx's trace context.
func (s *Service) emit(ctx context.Context, tx Tx, accountID string, payload proto.Message, at time.Time) error {
	env, err := event.New(accountID, payload, at)
	if err != nil {
		return fmt.Errorf("emit: %w", err)
	}
	h := nats.Header{}
	s.inject(ctx, h)
	if err := tx.AddEvent(ctx, env, h); err != nil {
		return fmt.Errorf("emit %s: %w", env.Event, err)
	}
	return nil
}

func newID(prefix string) (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("new id: %w", err)
	}
	return prefix + id.String(), nil
}
