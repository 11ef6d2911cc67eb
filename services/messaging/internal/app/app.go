// Package app holds messaging's use cases: configuring numbers and keywords, and handling an
// inbound SMS (contact lookup or creation, opt-out/opt-in, keyword opt-in, replies, events).
package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/customertext/webhooks/libs/event"
	"github.com/customertext/webhooks/libs/sms"
	"github.com/customertext/webhooks/services/messaging/internal/domain"
)

// Errors the ports map to transport status codes.
var (
	// ErrNotFound: the number, keyword or contact does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the keyword or number is taken.
	ErrAlreadyExists = errors.New("already exists")
	// ErrUnknownNumber: no account has registered the inbound To number.
	ErrUnknownNumber = errors.New("unknown number")
	// ErrBadSignature: the inbound request is not signed with the number's carrier token.
	ErrBadSignature = errors.New("invalid carrier signature")
)

// Number is an account's registered phone number.
type Number struct {
	AccountID string
	Phone     string
	// CarrierToken validates inbound signatures; it never leaves the service.
	CarrierToken string
}

// Contact is what messaging needs to know about a contact.
type Contact struct {
	ID       string
	Phone    string
	OptedOut bool
	Groups   []string
}

// Contacts is the contacts service.
type Contacts interface {
	// ByPhone returns ErrNotFound when the account has no contact with that number.
	ByPhone(ctx context.Context, accountID, phone string) (Contact, error)
	// Create adds a contact in groups; the contacts service emits new_contact with source (and
	// keyword, and the groups). It returns ErrAlreadyExists when the number is taken.
	Create(ctx context.Context, accountID, phone, source, keyword string, groups []string) (Contact, error)
	// SetOptOut reports whether the state changed.
	SetOptOut(ctx context.Context, accountID, contactID string, optedOut bool) (bool, error)
	AddToGroups(ctx context.Context, accountID, contactID string, groups []string) (Contact, error)
}

// InboundRecord is the journal entry of one inbound message, keyed by (account, MessageSid).
// It is written before any side effect and completed, together with the events, in one
// transaction, so a carrier retry resumes an interrupted message and never duplicates one.
type InboundRecord struct {
	AccountID  string
	MessageSid string
	MessageID  string
	ContactID  string
	From       string
	To         string
	Body       string
	Kind       domain.Kind
	Word       string
	// ContactCreated: handling this message created the contact.
	ContactCreated bool
	// OptChanged: the opt-out or opt-in of this message changed the contact's state.
	OptChanged bool
	ReceivedAt time.Time
}

// Store is messaging's PostgreSQL schema.
type Store interface {
	RegisterNumber(ctx context.Context, n Number) error
	NumberByPhone(ctx context.Context, phone string) (Number, error)
	CreateKeyword(ctx context.Context, accountID string, k domain.Keyword) error
	Keywords(ctx context.Context, accountID string) ([]domain.Keyword, error)
	// InboundDone reports whether the message was already completely handled.
	InboundDone(ctx context.Context, accountID, messageSid string) (bool, error)
	// BeginInbound stores rec unless the message is already journaled, and returns the stored
	// record (an earlier attempt's, when there was one).
	BeginInbound(ctx context.Context, rec InboundRecord) (InboundRecord, error)
	// MarkOptChanged records that the message changed the contact's opt-out state.
	MarkOptChanged(ctx context.Context, accountID, messageSid string) error
	// CompleteInbound marks the message handled and adds its events to the outbox in one
	// transaction. It returns false, and adds nothing, when the message was already handled.
	CompleteInbound(ctx context.Context, accountID, messageSid string, events []event.Envelope) (bool, error)
}

// SentLister lists the sandbox provider's messages.
type SentLister interface {
	List(ctx context.Context, accountID, to string) ([]sms.Sent, error)
}

// Metrics counts what SREs watch; labels never carry accounts or numbers.
type Metrics interface {
	Inbound(kind domain.Kind)
	SignatureFailure()
	ReplySent()
}

// Service is messaging's application layer.
type Service struct {
	store    Store
	contacts Contacts
	provider sms.Provider
	sent     SentLister
	metrics  Metrics
	logger   *slog.Logger
	now      func() time.Time
	// Region parses numbers written without a country code.
	region string
}

// Config tunes a Service.
type Config struct {
	DefaultRegion string
}

// NewService wires the use cases.
func NewService(store Store, contacts Contacts, provider sms.Provider, sent SentLister, metrics Metrics, logger *slog.Logger, cfg Config) *Service {
	if cfg.DefaultRegion == "" {
		cfg.DefaultRegion = "US"
	}
	return &Service{store: store, contacts: contacts, provider: provider, sent: sent, metrics: metrics,
		logger: logger, now: time.Now, region: cfg.DefaultRegion}
}
