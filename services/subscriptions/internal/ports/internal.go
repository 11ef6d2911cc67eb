package ports

import (
	"context"
	"log/slog"
	"time"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/services/subscriptions/internal/app"
	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// ConfigServer implements WebhookConfigService for dispatchers (service credential only).
type ConfigServer struct {
	webhooksv1.UnimplementedWebhookConfigServiceServer
	app *app.Service
	log *slog.Logger
}

// NewConfigServer returns the WebhookConfigService implementation.
func NewConfigServer(svc *app.Service, log *slog.Logger) *ConfigServer {
	return &ConfigServer{app: svc, log: log}
}

// GetWebhookConfig implements WebhookConfigService.
func (s *ConfigServer) GetWebhookConfig(ctx context.Context, req *webhooksv1.GetWebhookConfigRequest) (*webhooksv1.GetWebhookConfigResponse, error) {
	w, err := s.app.GetConfig(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	s.reportUnreadable(ctx, w)
	return &webhooksv1.GetWebhookConfigResponse{Config: configToProto(w, time.Now())}, nil
}

// ListWebhookConfigs implements WebhookConfigService.
func (s *ConfigServer) ListWebhookConfigs(ctx context.Context, req *webhooksv1.ListWebhookConfigsRequest) (*webhooksv1.ListWebhookConfigsResponse, error) {
	ws, next, err := s.app.ListConfigs(ctx, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	now := time.Now()
	out := &webhooksv1.ListWebhookConfigsResponse{NextPageToken: next}
	for _, w := range ws {
		s.reportUnreadable(ctx, w)
		out.Configs = append(out.Configs, configToProto(w, now))
	}
	return out, nil
}

// reportUnreadable logs a webhook served disabled because its secrets cannot be decrypted: an
// operator must restore the key.
func (s *ConfigServer) reportUnreadable(ctx context.Context, w domain.Webhook) {
	if w.Unreadable != "" {
		s.log.ErrorContext(ctx, "webhook secrets cannot be decrypted; served to dispatchers as disabled",
			"webhook_id", w.ID, "account_id", w.AccountID, "reason", w.Unreadable)
	}
}

// AccountServer implements AccountService for operators (service credential only).
type AccountServer struct {
	webhooksv1.UnimplementedAccountServiceServer
	app *app.Service
	log *slog.Logger
}

// NewAccountServer returns the AccountService implementation.
func NewAccountServer(svc *app.Service, log *slog.Logger) *AccountServer {
	return &AccountServer{app: svc, log: log}
}

// CreateAccount implements AccountService.
func (s *AccountServer) CreateAccount(ctx context.Context, req *webhooksv1.CreateAccountRequest) (*webhooksv1.CreateAccountResponse, error) {
	id, err := s.app.CreateAccount(ctx, req.GetName())
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &webhooksv1.CreateAccountResponse{AccountId: id}, nil
}

// RoleFromProto maps the protobuf role; unspecified maps to "".
func RoleFromProto(r webhooksv1.Role) domain.Role {
	switch r {
	case webhooksv1.Role_ROLE_ADMIN:
		return domain.RoleAdmin
	case webhooksv1.Role_ROLE_MANAGER:
		return domain.RoleManager
	case webhooksv1.Role_ROLE_USER:
		return domain.RoleUser
	}
	return ""
}

// CreateApiKey implements AccountService.
func (s *AccountServer) CreateApiKey(ctx context.Context, req *webhooksv1.CreateApiKeyRequest) (*webhooksv1.CreateApiKeyResponse, error) {
	userID, key, err := s.app.CreateAPIKey(ctx, req.GetAccountId(), req.GetUserEmail(), RoleFromProto(req.GetRole()))
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &webhooksv1.CreateApiKeyResponse{UserId: userID, ApiKey: key}, nil
}
