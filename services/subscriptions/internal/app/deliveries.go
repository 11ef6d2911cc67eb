package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/customertext/webhooks/libs/delivery"
	"github.com/customertext/webhooks/libs/event"
	"github.com/customertext/webhooks/libs/signing"
	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// maxRedeliverFailed bounds one RedeliverFailed call.
const maxRedeliverFailed = 10000

// AttemptQuery narrows ListAttempts.
type AttemptQuery struct {
	domain.AttemptFilter
	PageSize  int32
	PageToken string
}

// ListAttempts returns a page of the caller's delivery attempts, newest first.
func (s *Service) ListAttempts(ctx context.Context, p domain.Principal, q AttemptQuery) ([]domain.Attempt, string, error) {
	n, err := pageSize(q.PageSize)
	if err != nil {
		return nil, "", err
	}
	if q.EventType != "" && !event.Known(q.EventType) {
		return nil, "", &domain.ValidationError{Field: "event_type", Reason: fmt.Sprintf("unknown event type %q", q.EventType)}
	}
	if q.Outcome < 0 || q.Outcome > domain.OutcomeDeadLettered {
		return nil, "", &domain.ValidationError{Field: "outcome", Reason: "unknown outcome"}
	}
	if !q.Start.IsZero() && !q.End.IsZero() && !q.Start.Before(q.End) {
		return nil, "", &domain.ValidationError{Field: "start_time", Reason: "must be before end_time"}
	}
	afterTime, afterID, err := decodeAttemptToken(q.PageToken)
	if err != nil {
		return nil, "", err
	}
	f := q.AttemptFilter
	f.AccountID = p.AccountID
	as, err := s.store.ListAttempts(ctx, f, afterTime, afterID, n+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(as) > n {
		as = as[:n]
		next = encodeAttemptToken(as[n-1].Time, as[n-1].ID)
	}
	return as, next, nil
}

// errWebhookDisabled refuses a redelivery that would only be dead-lettered again.
var errWebhookDisabled = fmt.Errorf("%w: the webhook is disabled; enable it before redelivering", domain.ErrPrecondition)

// RedeliverDelivery queues one delivery of the caller's account again, from attempt 1.
func (s *Service) RedeliverDelivery(ctx context.Context, p domain.Principal, deliveryID string) error {
	if deliveryID == "" {
		return &domain.ValidationError{Field: "delivery_id", Reason: "is required"}
	}
	d, err := s.store.GetDelivery(ctx, p.AccountID, deliveryID)
	if err != nil {
		return err
	}
	w, err := s.store.GetWebhook(ctx, p.AccountID, d.WebhookID)
	if err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return fmt.Errorf("%w: the delivery's webhook was deleted", domain.ErrPrecondition)
		}
		return err
	}
	if !w.Enabled {
		return errWebhookDisabled
	}
	if err := s.redeliv.Redeliver(ctx, d, eventTime(d.Payload)); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "delivery redelivered", "delivery_id", d.ID, "webhook_id", d.WebhookID, "account_id", d.AccountID)
	return nil
}

// RedeliverFailed queues every dead-lettered delivery of a webhook whose last attempt is in
// [start, end) (defaults: the retention window up to now) and returns how many.
func (s *Service) RedeliverFailed(ctx context.Context, p domain.Principal, webhookID string, start, end time.Time) (int, error) {
	if webhookID == "" {
		return 0, &domain.ValidationError{Field: "webhook_id", Reason: "is required"}
	}
	if end.IsZero() {
		end = s.now()
	}
	if start.IsZero() {
		start = end.Add(-s.cfg.Retention)
	}
	if !start.Before(end) {
		return 0, &domain.ValidationError{Field: "start_time", Reason: "must be before end_time"}
	}
	w, err := s.store.GetWebhook(ctx, p.AccountID, webhookID)
	if err != nil {
		return 0, err
	}
	if !w.Enabled {
		return 0, errWebhookDisabled
	}
	ds, err := s.store.ListFailedDeliveries(ctx, p.AccountID, webhookID, start, end, maxRedeliverFailed)
	if err != nil {
		return 0, err
	}
	for i, d := range ds {
		if err := s.redeliv.Redeliver(ctx, d, eventTime(d.Payload)); err != nil {
			return i, fmt.Errorf("redelivered %d of %d: %w", i, len(ds), err)
		}
	}
	s.log.InfoContext(ctx, "failed deliveries redelivered", "webhook_id", webhookID, "account_id", p.AccountID, "count", len(ds))
	return len(ds), nil
}

func eventTime(payload []byte) time.Time {
	e, err := event.Parse(payload)
	if err != nil {
		return time.Time{}
	}
	t, err := e.Time()
	if err != nil {
		return time.Time{}
	}
	return t
}

// SendTestEvent delivers a sample event of eventType (default: the webhook's first) to the
// webhook now, through the same sender as real deliveries, and records the attempt as a test.
func (s *Service) SendTestEvent(ctx context.Context, p domain.Principal, id, eventType string) (domain.Attempt, error) {
	if id == "" {
		return domain.Attempt{}, &domain.ValidationError{Field: "id", Reason: "is required"}
	}
	w, err := s.store.GetWebhook(ctx, p.AccountID, id)
	if err != nil {
		return domain.Attempt{}, err
	}
	if eventType == "" {
		eventType = w.EventTypes[0]
	}
	if !w.Subscribes(eventType) {
		return domain.Attempt{}, &domain.ValidationError{Field: "event_type", Reason: fmt.Sprintf("the webhook is not subscribed to %q", eventType)}
	}
	now := s.now()
	env, err := event.Sample(eventType, w.AccountID, now)
	if err != nil {
		return domain.Attempt{}, err
	}
	body, err := env.Marshal()
	if err != nil {
		return domain.Attempt{}, err
	}
	var keys []signing.Secret
	for _, sec := range w.ActiveSecrets(now) {
		k, err := signing.ParseSecret(sec)
		if err != nil {
			return domain.Attempt{}, fmt.Errorf("webhook %s: stored secret: %w", w.ID, err)
		}
		keys = append(keys, k)
	}
	name, value := w.Auth.Header()
	timeout := s.cfg.TestTimeout
	if w.Timeout > 0 {
		timeout = w.Timeout
	}
	res := s.sender.Send(ctx, delivery.Request{
		URL: w.URL, Body: body, MsgID: env.EventID, Timestamp: now, Secrets: keys,
		AuthHeaderName: name, AuthHeaderValue: value, Timeout: timeout, SendTraceContext: w.SendTraceContext,
	})
	attemptID, err := newID("att_")
	if err != nil {
		return domain.Attempt{}, err
	}
	a := domain.Attempt{
		ID: attemptID, DeliveryID: "test_" + strings.TrimPrefix(env.EventID, "evt_") + "_" + w.ID,
		EventID: env.EventID, EventType: eventType, AccountID: w.AccountID, WebhookID: w.ID, URL: w.URL,
		Attempt: 1, Outcome: domain.OutcomeSucceeded, Test: true, RequestHeaders: res.Headers,
		ResponseStatus: int32(res.Status), ResponseBody: Sanitize(res.Body), DurationMS: res.Duration.Milliseconds(),
		Error: Sanitize(res.ErrorText()), Time: now.UTC().Truncate(time.Microsecond),
	}
	outcome := "succeeded"
	if !res.Succeeded() {
		a.Outcome = domain.OutcomeDeadLettered
		outcome = "failed"
	}
	s.metrics.TestEvents.WithLabelValues(outcome).Inc()
	if err := s.store.InsertTestAttempt(ctx, a); err != nil {
		// The caller still gets the result of the request that was made.
		s.log.ErrorContext(ctx, "record test attempt", "webhook_id", w.ID, "error", err)
	}
	return a, nil
}

// Sanitize makes a response excerpt storable as PostgreSQL text: valid UTF-8, no NUL bytes, at
// most delivery.MaxResponseExcerpt bytes.
func Sanitize(s string) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if len(s) <= delivery.MaxResponseExcerpt {
		return s
	}
	cut := delivery.MaxResponseExcerpt
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// RecordAttempts stores a batch of attempt records from dispatchers (records older than the
// retention window are dropped) and announces the webhooks it disabled.
func (s *Service) RecordAttempts(ctx context.Context, batch []domain.Attempt) error {
	cutoff := s.now().Add(-s.cfg.Retention)
	kept := batch[:0:0]
	for _, a := range batch {
		if s.cfg.Retention > 0 && a.Time.Before(cutoff) {
			continue
		}
		a.ResponseBody = Sanitize(a.ResponseBody)
		a.Error = Sanitize(a.Error)
		kept = append(kept, a)
	}
	disabled, err := s.store.WriteAttempts(ctx, kept, s.cfg.AutoDisableAfter)
	if err != nil {
		return err
	}
	for _, d := range disabled {
		s.metrics.AutoDisabled.WithLabelValues(d.Kind).Inc()
		s.log.WarnContext(ctx, "webhook disabled by the platform", "webhook_id", d.WebhookID, "reason", d.Kind)
		s.changed(ctx, d.WebhookID)
	}
	return nil
}
