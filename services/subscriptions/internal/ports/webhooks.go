package ports

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/customertext/webhooks/libs/event"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/services/subscriptions/internal/app"
	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// WebhookServer implements WebhookService. AuthInterceptor has put the admin principal in the
// context of every call.
type WebhookServer struct {
	webhooksv1.UnimplementedWebhookServiceServer
	app *app.Service
	log *slog.Logger
}

// NewWebhookServer returns the WebhookService implementation.
func NewWebhookServer(svc *app.Service, log *slog.Logger) *WebhookServer {
	return &WebhookServer{app: svc, log: log}
}

func (s *WebhookServer) principal(ctx context.Context) (domain.Principal, error) {
	p, ok := principalFrom(ctx)
	if !ok {
		return domain.Principal{}, status.Error(codes.Unauthenticated, "missing credentials")
	}
	return p, nil
}

// CreateWebhook implements WebhookService.
func (s *WebhookServer) CreateWebhook(ctx context.Context, req *webhooksv1.CreateWebhookRequest) (*webhooksv1.CreateWebhookResponse, error) {
	p, err := s.principal(ctx)
	if err != nil {
		return nil, err
	}
	w, secret, err := s.app.CreateWebhook(ctx, p, domain.Spec{
		// A webhook is enabled unless asked otherwise: a REST hook subscription sends only url
		// and event_types.
		URL: req.GetUrl(), EventTypes: req.GetEventTypes(), Enabled: req.Enabled == nil || req.GetEnabled(),
		Description: req.GetDescription(), Auth: authFromProto(req.GetAuth()),
		Timeout:          time.Duration(req.GetTimeoutSeconds()) * time.Second,
		SendTraceContext: req.GetSendTraceContext(),
	})
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &webhooksv1.CreateWebhookResponse{Webhook: webhookToProto(w), SigningSecret: secret}, nil
}

// GetWebhook implements WebhookService.
func (s *WebhookServer) GetWebhook(ctx context.Context, req *webhooksv1.GetWebhookRequest) (*webhooksv1.GetWebhookResponse, error) {
	p, err := s.principal(ctx)
	if err != nil {
		return nil, err
	}
	w, err := s.app.GetWebhook(ctx, p, req.GetId())
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &webhooksv1.GetWebhookResponse{Webhook: webhookToProto(w)}, nil
}

// ListWebhooks implements WebhookService.
func (s *WebhookServer) ListWebhooks(ctx context.Context, req *webhooksv1.ListWebhooksRequest) (*webhooksv1.ListWebhooksResponse, error) {
	p, err := s.principal(ctx)
	if err != nil {
		return nil, err
	}
	ws, next, err := s.app.ListWebhooks(ctx, p, app.ListFilter{
		EventType: req.GetEventType(), Enabled: req.Enabled, PageSize: req.GetPageSize(), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	out := &webhooksv1.ListWebhooksResponse{NextPageToken: next}
	for _, w := range ws {
		out.Webhooks = append(out.Webhooks, webhookToProto(w))
	}
	return out, nil
}

// UpdateWebhook implements WebhookService.
func (s *WebhookServer) UpdateWebhook(ctx context.Context, req *webhooksv1.UpdateWebhookRequest) (*webhooksv1.UpdateWebhookResponse, error) {
	p, err := s.principal(ctx)
	if err != nil {
		return nil, err
	}
	in := req.GetWebhook()
	if in == nil {
		return nil, toStatus(ctx, s.log, &domain.ValidationError{Field: "webhook", Reason: "is required"})
	}
	w, err := s.app.UpdateWebhook(ctx, p, in.GetId(), domain.Spec{
		URL: in.GetUrl(), EventTypes: in.GetEventTypes(), Enabled: in.GetEnabled(),
		Description: in.GetDescription(), Auth: authFromProto(in.GetAuth()),
		Timeout:          time.Duration(in.GetTimeoutSeconds()) * time.Second,
		SendTraceContext: in.GetSendTraceContext(),
	}, req.GetUpdateMask().GetPaths())
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &webhooksv1.UpdateWebhookResponse{Webhook: webhookToProto(w)}, nil
}

// DeleteWebhook implements WebhookService.
func (s *WebhookServer) DeleteWebhook(ctx context.Context, req *webhooksv1.DeleteWebhookRequest) (*webhooksv1.DeleteWebhookResponse, error) {
	p, err := s.principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.app.DeleteWebhook(ctx, p, req.GetId()); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &webhooksv1.DeleteWebhookResponse{}, nil
}

// EnableWebhook implements WebhookService.
func (s *WebhookServer) EnableWebhook(ctx context.Context, req *webhooksv1.EnableWebhookRequest) (*webhooksv1.EnableWebhookResponse, error) {
	p, err := s.principal(ctx)
	if err != nil {
		return nil, err
	}
	w, err := s.app.SetEnabled(ctx, p, req.GetId(), true)
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &webhooksv1.EnableWebhookResponse{Webhook: webhookToProto(w)}, nil
}

// DisableWebhook implements WebhookService.
func (s *WebhookServer) DisableWebhook(ctx context.Context, req *webhooksv1.DisableWebhookRequest) (*webhooksv1.DisableWebhookResponse, error) {
	p, err := s.principal(ctx)
	if err != nil {
		return nil, err
	}
	w, err := s.app.SetEnabled(ctx, p, req.GetId(), false)
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &webhooksv1.DisableWebhookResponse{Webhook: webhookToProto(w)}, nil
}

// SendTestEvent implements WebhookService.
func (s *WebhookServer) SendTestEvent(ctx context.Context, req *webhooksv1.SendTestEventRequest) (*webhooksv1.SendTestEventResponse, error) {
	p, err := s.principal(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.app.SendTestEvent(ctx, p, req.GetId(), req.GetEventType())
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &webhooksv1.SendTestEventResponse{Attempt: attemptToProto(a)}, nil
}

// ListDeliveryAttempts implements WebhookService.
func (s *WebhookServer) ListDeliveryAttempts(ctx context.Context, req *webhooksv1.ListDeliveryAttemptsRequest) (*webhooksv1.ListDeliveryAttemptsResponse, error) {
	p, err := s.principal(ctx)
	if err != nil {
		return nil, err
	}
	as, next, err := s.app.ListAttempts(ctx, p, app.AttemptQuery{
		AttemptFilter: domain.AttemptFilter{
			WebhookID: req.GetWebhookId(), EventType: req.GetEventType(), EventID: req.GetEventId(),
			Outcome: domain.Outcome(req.GetOutcome()), Start: timeOrZero(req.GetStartTime()), End: timeOrZero(req.GetEndTime()),
		},
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	out := &webhooksv1.ListDeliveryAttemptsResponse{NextPageToken: next}
	for _, a := range as {
		out.Attempts = append(out.Attempts, attemptToProto(a))
	}
	return out, nil
}

// RedeliverDelivery implements WebhookService.
func (s *WebhookServer) RedeliverDelivery(ctx context.Context, req *webhooksv1.RedeliverDeliveryRequest) (*webhooksv1.RedeliverDeliveryResponse, error) {
	p, err := s.principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.app.RedeliverDelivery(ctx, p, req.GetDeliveryId()); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &webhooksv1.RedeliverDeliveryResponse{}, nil
}

// RedeliverFailed implements WebhookService.
func (s *WebhookServer) RedeliverFailed(ctx context.Context, req *webhooksv1.RedeliverFailedRequest) (*webhooksv1.RedeliverFailedResponse, error) {
	p, err := s.principal(ctx)
	if err != nil {
		return nil, err
	}
	n, err := s.app.RedeliverFailed(ctx, p, req.GetWebhookId(), timeOrZero(req.GetStartTime()), timeOrZero(req.GetEndTime()))
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &webhooksv1.RedeliverFailedResponse{Redelivered: int32(n)}, nil
}

// RotateSigningSecret implements WebhookService.
func (s *WebhookServer) RotateSigningSecret(ctx context.Context, req *webhooksv1.RotateSigningSecretRequest) (*webhooksv1.RotateSigningSecretResponse, error) {
	p, err := s.principal(ctx)
	if err != nil {
		return nil, err
	}
	w, secret, err := s.app.RotateSecret(ctx, p, req.GetId(), time.Duration(req.GetOverlapSeconds())*time.Second)
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	out := &webhooksv1.RotateSigningSecretResponse{Webhook: webhookToProto(w), SigningSecret: secret}
	if !w.PrevSecretExpireTime.IsZero() {
		out.PreviousSecretExpireTime = timestampOf(w.PrevSecretExpireTime)
	}
	return out, nil
}

// ListEventTypes implements WebhookService.
func (s *WebhookServer) ListEventTypes(ctx context.Context, _ *webhooksv1.ListEventTypesRequest) (*webhooksv1.ListEventTypesResponse, error) {
	p, err := s.principal(ctx)
	if err != nil {
		return nil, err
	}
	out := &webhooksv1.ListEventTypesResponse{}
	for _, spec := range event.Catalog() {
		env, err := event.Sample(spec.Name, p.AccountID, time.Now())
		if err != nil {
			return nil, toStatus(ctx, s.log, err)
		}
		body, err := env.Marshal()
		if err != nil {
			return nil, toStatus(ctx, s.log, err)
		}
		schema, err := bodySchema(spec.Sample.ProtoReflect().Descriptor())
		if err != nil {
			return nil, toStatus(ctx, s.log, err)
		}
		out.EventTypes = append(out.EventTypes, &webhooksv1.EventType{
			Name: spec.Name, Description: spec.Description, SamplePayload: string(body), BodySchema: schema})
	}
	return out, nil
}

// RecoverEvents implements WebhookService.
func (s *WebhookServer) RecoverEvents(ctx context.Context, req *webhooksv1.RecoverEventsRequest) (*webhooksv1.RecoverEventsResponse, error) {
	p, err := s.principal(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.app.RecoverEvents(ctx, p, req.GetWebhookId(), timeOrZero(req.GetStartTime()))
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &webhooksv1.RecoverEventsResponse{EventsScanned: r.EventsScanned, DeliveriesQueued: r.DeliveriesQueued}, nil
}

// ListEventSamples implements WebhookService.
func (s *WebhookServer) ListEventSamples(ctx context.Context, req *webhooksv1.ListEventSamplesRequest) (*webhooksv1.ListEventSamplesResponse, error) {
	p, err := s.principal(ctx)
	if err != nil {
		return nil, err
	}
	bodies, err := s.app.EventSamples(ctx, p, req.GetEventType())
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	out := &webhooksv1.ListEventSamplesResponse{}
	for _, b := range bodies {
		st := &structpb.Struct{}
		if err := protojson.Unmarshal(b, st); err != nil {
			return nil, toStatus(ctx, s.log, fmt.Errorf("sample body: %w", err))
		}
		out.Samples = append(out.Samples, st)
	}
	return out, nil
}

// IssueApiKey implements WebhookService.
func (s *WebhookServer) IssueApiKey(ctx context.Context, req *webhooksv1.IssueApiKeyRequest) (*webhooksv1.IssueApiKeyResponse, error) {
	p, err := s.principal(ctx)
	if err != nil {
		return nil, err
	}
	k, key, err := s.app.IssueAPIKey(ctx, p, req.GetName(), domain.Role(req.GetRole()))
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &webhooksv1.IssueApiKeyResponse{ApiKey: apiKeyToProto(k), Key: key}, nil
}

// ListApiKeys implements WebhookService.
func (s *WebhookServer) ListApiKeys(ctx context.Context, _ *webhooksv1.ListApiKeysRequest) (*webhooksv1.ListApiKeysResponse, error) {
	p, err := s.principal(ctx)
	if err != nil {
		return nil, err
	}
	ks, err := s.app.ListAPIKeys(ctx, p)
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	out := &webhooksv1.ListApiKeysResponse{}
	for _, k := range ks {
		out.ApiKeys = append(out.ApiKeys, apiKeyToProto(k))
	}
	return out, nil
}

// RevokeApiKey implements WebhookService.
func (s *WebhookServer) RevokeApiKey(ctx context.Context, req *webhooksv1.RevokeApiKeyRequest) (*webhooksv1.RevokeApiKeyResponse, error) {
	p, err := s.principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.app.RevokeAPIKey(ctx, p, req.GetId()); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &webhooksv1.RevokeApiKeyResponse{}, nil
}
