package app

import (
	"context"

	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// GetConfig returns any account's webhook with decrypted secrets, for dispatchers.
func (s *Service) GetConfig(ctx context.Context, id string) (domain.Webhook, error) {
	if id == "" {
		return domain.Webhook{}, &domain.ValidationError{Field: "id", Reason: "is required"}
	}
	return s.store.GetWebhook(ctx, "", id)
}

// ListConfigs returns a page of every account's webhooks, enabled or not, for dispatchers.
func (s *Service) ListConfigs(ctx context.Context, pageSize int32, pageToken string) ([]domain.Webhook, string, error) {
	return s.listWebhooks(ctx, "", ListFilter{PageSize: pageSize, PageToken: pageToken})
}
