package app

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/customertext/webhooks/libs/signing"
	"github.com/customertext/webhooks/services/subscriptions/internal/adapters/pgstore"
	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// Rotation overlap bounds.
const (
	DefaultRotationOverlap = 24 * time.Hour
	MaxRotationOverlap     = 7 * 24 * time.Hour
)

func newID(prefix string) (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("new id: %w", err)
	}
	return prefix + id.String(), nil
}

// CreateWebhook validates spec, stores the webhook with a fresh signing secret and announces it.
// It returns the secret in clear text, this once.
func (s *Service) CreateWebhook(ctx context.Context, p domain.Principal, spec domain.Spec) (domain.Webhook, string, error) {
	spec, err := s.cfg.Policy.Validate(spec, "")
	if err != nil {
		return domain.Webhook{}, "", err
	}
	id, err := newID("wh_")
	if err != nil {
		return domain.Webhook{}, "", err
	}
	_, secret, err := signing.NewSecret()
	if err != nil {
		return domain.Webhook{}, "", err
	}
	w, err := s.store.CreateWebhook(ctx, domain.Webhook{
		ID: id, AccountID: p.AccountID, URL: spec.URL, EventTypes: spec.EventTypes, Enabled: spec.Enabled,
		Description: spec.Description, Auth: spec.Auth, Timeout: spec.Timeout,
		SendTraceContext: spec.SendTraceContext, Secret: secret,
	}, s.cfg.MaxWebhooksPerAccount)
	if err != nil {
		return domain.Webhook{}, "", err
	}
	s.log.InfoContext(ctx, "webhook created", "webhook_id", w.ID, "account_id", w.AccountID)
	s.changed(ctx, w.ID)
	return w, secret, nil
}

// GetWebhook returns a webhook of the caller's account.
func (s *Service) GetWebhook(ctx context.Context, p domain.Principal, id string) (domain.Webhook, error) {
	if id == "" {
		return domain.Webhook{}, &domain.ValidationError{Field: "id", Reason: "is required"}
	}
	return s.store.GetWebhook(ctx, p.AccountID, id)
}

// ListFilter narrows ListWebhooks.
type ListFilter struct {
	EventType string
	Enabled   *bool
	PageSize  int32
	PageToken string
}

// ListWebhooks returns a page of the caller's webhooks in creation order and the next token.
func (s *Service) ListWebhooks(ctx context.Context, p domain.Principal, f ListFilter) ([]domain.Webhook, string, error) {
	if f.EventType != "" {
		if _, err := domain.ValidateEventTypes([]string{f.EventType}, "event_type"); err != nil {
			return nil, "", err
		}
	}
	return s.listWebhooks(ctx, p.AccountID, f)
}

func (s *Service) listWebhooks(ctx context.Context, accountID string, f ListFilter) ([]domain.Webhook, string, error) {
	n, err := pageSize(f.PageSize)
	if err != nil {
		return nil, "", err
	}
	after, err := decodeToken(f.PageToken, "w")
	if err != nil {
		return nil, "", err
	}
	ws, err := s.store.ListWebhooks(ctx, pgstore.WebhookFilter{
		AccountID: accountID, EventType: f.EventType, Enabled: f.Enabled, AfterID: after, Limit: n + 1,
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(ws) > n {
		ws = ws[:n]
		next = encodeToken("w", ws[n-1].ID)
	}
	return ws, next, nil
}

// Update paths UpdateWebhook accepts.
var updatablePaths = map[string]bool{
	"url": true, "event_types": true, "enabled": true, "description": true, "auth": true, "timeout_seconds": true,
	"send_trace_context": true,
}

// UpdateWebhook applies the fields named by paths from spec. An auth of the same kind with an
// empty value keeps the stored value (secrets are write-only, so clients cannot echo them back),
// but only while the URL keeps its origin: auth never follows a URL to another scheme, host or
// port. Such a change must name "auth" in the mask with the auth for the new origin (or none);
// otherwise it is refused, and nothing is changed.
func (s *Service) UpdateWebhook(ctx context.Context, p domain.Principal, id string, spec domain.Spec, paths []string) (domain.Webhook, error) {
	if id == "" {
		return domain.Webhook{}, &domain.ValidationError{Field: "webhook.id", Reason: "is required"}
	}
	if len(paths) == 0 {
		return domain.Webhook{}, &domain.ValidationError{Field: "update_mask", Reason: "name at least one of url, event_types, enabled, description, auth, timeout_seconds, send_trace_context"}
	}
	for _, path := range paths {
		if !updatablePaths[path] {
			return domain.Webhook{}, &domain.ValidationError{Field: "update_mask", Reason: fmt.Sprintf("unknown or read-only path %q (want url, event_types, enabled, description, auth, timeout_seconds, send_trace_context)", path)}
		}
	}
	w, err := s.store.UpdateWebhook(ctx, p.AccountID, id, func(w *domain.Webhook) error {
		cur := domain.Spec{URL: w.URL, EventTypes: w.EventTypes, Enabled: w.Enabled, Description: w.Description, Auth: w.Auth, Timeout: w.Timeout,
			SendTraceContext: w.SendTraceContext}
		authSupplied := false // a new auth (or none) given for this update, not the stored one
		for _, path := range paths {
			switch path {
			case "url":
				cur.URL = spec.URL
			case "event_types":
				cur.EventTypes = spec.EventTypes
			case "enabled":
				cur.Enabled = spec.Enabled
			case "description":
				cur.Description = spec.Description
			case "timeout_seconds":
				cur.Timeout = spec.Timeout
			case "send_trace_context":
				cur.SendTraceContext = spec.SendTraceContext
			case "auth":
				next := spec.Auth
				authSupplied = true
				if next.Kind == w.Auth.Kind && next.Value == "" && next.Kind != domain.AuthNone {
					next.Value = w.Auth.Value
					authSupplied = false
				}
				cur.Auth = next
			}
		}
		valid, err := s.cfg.Policy.Validate(cur, "webhook.")
		if err != nil {
			return err
		}
		if valid.Auth.Kind != domain.AuthNone && valid.Auth.Kind != "" && !authSupplied && !domain.SameOrigin(w.URL, valid.URL) {
			return &domain.ValidationError{Field: "webhook.auth", Reason: "the url moves to another origin (scheme, host or port): " +
				"the stored auth is never sent there; name auth in update_mask and give its value again, or set no auth"}
		}
		if valid.Enabled && !w.Enabled {
			w.DisabledReason = ""
		}
		w.URL, w.EventTypes, w.Enabled, w.Description, w.Auth = valid.URL, valid.EventTypes, valid.Enabled, valid.Description, valid.Auth
		w.Timeout, w.SendTraceContext = valid.Timeout, valid.SendTraceContext
		if w.Auth.Kind != domain.AuthAPIKey {
			w.Auth.HeaderName = ""
		}
		return nil
	})
	if err != nil {
		return domain.Webhook{}, err
	}
	s.log.InfoContext(ctx, "webhook updated", "webhook_id", w.ID, "account_id", w.AccountID, "paths", paths)
	s.changed(ctx, w.ID)
	return w, nil
}

// DeleteWebhook deletes a webhook of the caller's account.
func (s *Service) DeleteWebhook(ctx context.Context, p domain.Principal, id string) error {
	if id == "" {
		return &domain.ValidationError{Field: "id", Reason: "is required"}
	}
	if err := s.store.DeleteWebhook(ctx, p.AccountID, id); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "webhook deleted", "webhook_id", id, "account_id", p.AccountID)
	s.changed(ctx, id)
	return nil
}

// SetEnabled enables or disables a webhook; enabling clears a platform disable reason.
func (s *Service) SetEnabled(ctx context.Context, p domain.Principal, id string, enabled bool) (domain.Webhook, error) {
	if id == "" {
		return domain.Webhook{}, &domain.ValidationError{Field: "id", Reason: "is required"}
	}
	w, err := s.store.UpdateWebhook(ctx, p.AccountID, id, func(w *domain.Webhook) error {
		w.Enabled = enabled
		w.DisabledReason = ""
		return nil
	})
	if err != nil {
		return domain.Webhook{}, err
	}
	s.log.InfoContext(ctx, "webhook enabled changed", "webhook_id", w.ID, "account_id", w.AccountID, "enabled", enabled)
	s.changed(ctx, w.ID)
	return w, nil
}

// RotateSecret replaces the signing secret; the previous one keeps signing for overlap (0 means
// DefaultRotationOverlap). It returns the new secret in clear text, this once.
func (s *Service) RotateSecret(ctx context.Context, p domain.Principal, id string, overlap time.Duration) (domain.Webhook, string, error) {
	switch {
	case id == "":
		return domain.Webhook{}, "", &domain.ValidationError{Field: "id", Reason: "is required"}
	case overlap < 0:
		return domain.Webhook{}, "", &domain.ValidationError{Field: "overlap_seconds", Reason: "must not be negative"}
	case overlap > MaxRotationOverlap:
		return domain.Webhook{}, "", &domain.ValidationError{Field: "overlap_seconds", Reason: "must be at most 7 days (604800)"}
	case overlap == 0:
		overlap = DefaultRotationOverlap
	}
	_, secret, err := signing.NewSecret()
	if err != nil {
		return domain.Webhook{}, "", err
	}
	w, err := s.store.UpdateWebhook(ctx, p.AccountID, id, func(w *domain.Webhook) error {
		w.PrevSecret = w.Secret
		w.PrevSecretExpireTime = s.now().Add(overlap).UTC().Truncate(time.Microsecond)
		w.Secret = secret
		return nil
	})
	if err != nil {
		return domain.Webhook{}, "", err
	}
	s.log.InfoContext(ctx, "signing secret rotated", "webhook_id", w.ID, "account_id", w.AccountID, "overlap", overlap.String())
	s.changed(ctx, w.ID)
	return w, secret, nil
}
