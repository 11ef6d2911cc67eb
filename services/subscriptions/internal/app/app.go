// Package app holds the subscription service's use cases: webhook settings, test events, the
// delivery log and redelivery, accounts and API keys, the dispatchers' config feed, and the
// attempt-log writer's bookkeeping. It sees the outside world through the small interfaces below.
package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/customertext/webhooks/libs/delivery"
	"github.com/customertext/webhooks/services/subscriptions/internal/adapters/pgstore"
	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// Store is the persistence the use cases need.
type Store interface {
	CreateAccount(ctx context.Context, id, name string) error
	CreateAPIKey(ctx context.Context, accountID, email string, role domain.Role, newUserID string, k domain.APIKey, keyHash []byte) (string, error)
	IssueAPIKey(ctx context.Context, k domain.APIKey, keyHash []byte) (domain.APIKey, error)
	ListAPIKeys(ctx context.Context, accountID string) ([]domain.APIKey, error)
	RevokeAPIKey(ctx context.Context, accountID, id string) error
	PrincipalByKeyHash(ctx context.Context, keyHash []byte) (domain.Principal, error)
	TouchAPIKey(ctx context.Context, id string) error

	CreateWebhook(ctx context.Context, w domain.Webhook, limit int) (domain.Webhook, error)
	GetWebhook(ctx context.Context, accountID, id string) (domain.Webhook, error)
	ListWebhooks(ctx context.Context, f pgstore.WebhookFilter) ([]domain.Webhook, error)
	UpdateWebhook(ctx context.Context, accountID, id string, change func(*domain.Webhook) error) (domain.Webhook, error)
	DeleteWebhook(ctx context.Context, accountID, id string) error

	WriteAttempts(ctx context.Context, batch []domain.Attempt, autoDisableAfter time.Duration) ([]pgstore.Disabled, error)
	InsertTestAttempt(ctx context.Context, a domain.Attempt) error
	ListAttempts(ctx context.Context, f domain.AttemptFilter, afterTime time.Time, afterID string, limit int) ([]domain.Attempt, error)
	GetDelivery(ctx context.Context, accountID, id string) (domain.Delivery, error)
	ListFailedDeliveries(ctx context.Context, accountID, webhookID string, start, end time.Time, limit int) ([]domain.Delivery, error)
}

// Notifier announces a webhook config change to dispatchers.
type Notifier interface {
	WebhookChanged(ctx context.Context, webhookID string) error
}

// Redeliverer queues a delivery again.
type Redeliverer interface {
	Redeliver(ctx context.Context, d domain.Delivery, eventTime time.Time) error
	// Recover queues d on the bulk lane, at most once per (event, webhook) within a window; queued
	// is false for a repeat.
	Recover(ctx context.Context, d domain.Delivery, eventTime time.Time) (queued bool, err error)
}

// Sender performs one webhook request.
type Sender interface {
	Send(ctx context.Context, req delivery.Request) delivery.Result
}

// Config holds the use cases' settings.
type Config struct {
	Policy domain.Policy
	// AutoDisableAfter: a webhook failing without success this long is disabled; 0 never.
	AutoDisableAfter time.Duration
	// Retention of the delivery log.
	Retention time.Duration
	// TestTimeout bounds a test event's request to a webhook without its own timeout.
	TestTimeout time.Duration
	// EventsRetention is how far back RecoverEvents may go; default DefaultEventsRetention.
	EventsRetention time.Duration
	// MaxWebhooksPerAccount limits how many webhooks an account may have; 0 means no limit.
	MaxWebhooksPerAccount int
}

// Metrics are the use cases' Prometheus metrics.
type Metrics struct {
	TestEvents   *prometheus.CounterVec
	AutoDisabled *prometheus.CounterVec
	// RecoveryEvents and RecoveryDeliveries count what RecoverEvents scanned and queued, as it
	// goes: the progress of a long recovery.
	RecoveryEvents     prometheus.Counter
	RecoveryDeliveries prometheus.Counter
}

// NewMetrics creates and registers the metrics.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		TestEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "subscriptions_test_events_total",
			Help: "Test events sent, by outcome (succeeded, failed).",
		}, []string{"outcome"}),
		AutoDisabled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "subscriptions_webhooks_auto_disabled_total",
			Help: "Webhooks disabled by the platform, by reason (gone, failing).",
		}, []string{"reason"}),
		RecoveryEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "subscriptions_recovery_events_scanned_total",
			Help: "Events read from EVENTS by recoveries.",
		}),
		RecoveryDeliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "subscriptions_recovery_deliveries_queued_total",
			Help: "Deliveries queued on the bulk lane by recoveries.",
		}),
	}
	for _, c := range []prometheus.Collector{m.TestEvents, m.AutoDisabled, m.RecoveryEvents, m.RecoveryDeliveries} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Series at 0 from the start: dashboards show 0, not "no data", until the first one.
	for _, o := range []string{"succeeded", "failed"} {
		m.TestEvents.WithLabelValues(o)
	}
	for _, r := range []string{"gone", "failing"} {
		m.AutoDisabled.WithLabelValues(r)
	}
	return m, nil
}

// Service implements the use cases.
type Service struct {
	store    Store
	notifier Notifier
	redeliv  Redeliverer
	events   EventLog
	sender   Sender
	cfg      Config
	metrics  *Metrics
	log      *slog.Logger
	now      func() time.Time
}

// New returns a Service. events may be nil where samples and recovery are not used (the CLI).
func New(store Store, notifier Notifier, redeliv Redeliverer, events EventLog, sender Sender, cfg Config, metrics *Metrics, log *slog.Logger) *Service {
	if cfg.TestTimeout <= 0 {
		cfg.TestTimeout = delivery.DefaultTimeout
	}
	if cfg.EventsRetention <= 0 {
		cfg.EventsRetention = DefaultEventsRetention
	}
	return &Service{store: store, notifier: notifier, redeliv: redeliv, events: events, sender: sender, cfg: cfg,
		metrics: metrics, log: log, now: time.Now}
}

// changed announces a committed change. A lost notification only delays dispatchers until their
// next resync, so it is logged, not returned.
func (s *Service) changed(ctx context.Context, webhookID string) {
	if err := s.notifier.WebhookChanged(ctx, webhookID); err != nil {
		s.log.WarnContext(ctx, "change notification failed", "webhook_id", webhookID, "error", err)
	}
}
