package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/customertext/webhooks/libs/event"
	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// DefaultEventsRetention is how long EVENTS keeps events (libs/streams' default MaxAge).
const DefaultEventsRetention = 7 * 24 * time.Hour

// maxSamples is how many recent events ListEventSamples returns.
const maxSamples = 3

// EventLog reads the EVENTS stream.
type EventLog interface {
	// Recent returns the n most recent event bodies of the account and type, newest first.
	Recent(ctx context.Context, accountID, eventType string, n int) ([][]byte, error)
	// Scan calls fn with every event body of the account and types since a time, oldest first.
	Scan(ctx context.Context, accountID string, types []string, since time.Time, fn func([]byte) error) error
}

// Recovery is what RecoverEvents did.
type Recovery struct {
	EventsScanned    int64
	DeliveriesQueued int64
}

// RecoverEvents queues again, on the bulk lane, every event of the webhook's subscribed types
// that EVENTS holds since start: what the webhook missed while it was disabled or its endpoint
// was down. A second recovery of the same event for the same webhook within DELIVERIES'
// duplicate window queues nothing. Progress shows in the recovery metrics and a log line every
// 1,000 events; the result has the totals.
func (s *Service) RecoverEvents(ctx context.Context, p domain.Principal, webhookID string, start time.Time) (Recovery, error) {
	now := s.now()
	switch {
	case webhookID == "":
		return Recovery{}, &domain.ValidationError{Field: "webhook_id", Reason: "is required"}
	case start.IsZero():
		return Recovery{}, &domain.ValidationError{Field: "start_time", Reason: "is required"}
	case start.After(now):
		return Recovery{}, &domain.ValidationError{Field: "start_time", Reason: "is in the future"}
	case start.Before(now.Add(-s.cfg.EventsRetention)):
		return Recovery{}, &domain.ValidationError{Field: "start_time", Reason: fmt.Sprintf(
			"is more than %s ago: events are kept %s, so nothing older can be recovered",
			s.cfg.EventsRetention, s.cfg.EventsRetention)}
	}
	w, err := s.store.GetWebhook(ctx, p.AccountID, webhookID)
	if err != nil {
		return Recovery{}, err
	}
	if !w.Enabled {
		return Recovery{}, fmt.Errorf("%w: the webhook is disabled; enable it before recovering its events", domain.ErrPrecondition)
	}
	var r Recovery
	err = s.events.Scan(ctx, w.AccountID, w.EventTypes, start, func(body []byte) error {
		r.EventsScanned++
		s.metrics.RecoveryEvents.Inc()
		env, err := event.Parse(body)
		if err != nil || env.AccountID != w.AccountID || !w.Subscribes(env.Event) {
			// The fan-out terminates such messages too; they were never deliverable.
			return nil
		}
		at, _ := env.Time()
		queued, err := s.redeliv.Recover(ctx, domain.Delivery{
			ID: DeliveryID(env.EventID, w.ID), WebhookID: w.ID, AccountID: w.AccountID,
			EventID: env.EventID, EventType: env.Event, Payload: body,
		}, at)
		if err != nil {
			return err
		}
		if queued {
			r.DeliveriesQueued++
			s.metrics.RecoveryDeliveries.Inc()
		}
		if r.EventsScanned%1000 == 0 {
			s.log.InfoContext(ctx, "recovering events", "webhook_id", w.ID, "events_scanned", r.EventsScanned, "deliveries_queued", r.DeliveriesQueued)
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("recover events (scanned %d, queued %d): %w", r.EventsScanned, r.DeliveriesQueued, err)
	}
	s.log.InfoContext(ctx, "events recovered", "webhook_id", w.ID, "account_id", w.AccountID,
		"since", start.UTC().Format(time.RFC3339), "events_scanned", r.EventsScanned, "deliveries_queued", r.DeliveriesQueued)
	return r, nil
}

// DeliveryID is the dispatcher's delivery id of (event, webhook), "del_<event uuid>_<webhook
// id>", so a recovered delivery shares the delivery log of the original one.
func DeliveryID(eventID, webhookID string) string {
	return "del_" + strings.TrimPrefix(eventID, "evt_") + "_" + webhookID
}

// EventSamples returns the account's most recent events of a type (newest first, at most 3) as
// webhook bodies, or the catalog sample when EVENTS holds none.
func (s *Service) EventSamples(ctx context.Context, p domain.Principal, eventType string) ([][]byte, error) {
	if eventType == "" || !event.Known(eventType) {
		return nil, &domain.ValidationError{Field: "event_type", Reason: fmt.Sprintf("unknown event type %q", eventType)}
	}
	bodies, err := s.events.Recent(ctx, p.AccountID, eventType, maxSamples)
	if err != nil {
		return nil, err
	}
	if len(bodies) > 0 {
		return bodies, nil
	}
	env, err := event.Sample(eventType, p.AccountID, s.now())
	if err != nil {
		return nil, err
	}
	body, err := env.Marshal()
	if err != nil {
		return nil, err
	}
	return [][]byte{body}, nil
}
