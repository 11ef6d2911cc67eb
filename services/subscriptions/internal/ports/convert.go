package ports

import (
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/customertext/webhooks/libs/delivery"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// webhookToProto is the public view: secrets are replaced by hints.
func webhookToProto(w domain.Webhook) *webhooksv1.Webhook {
	out := &webhooksv1.Webhook{
		Id: w.ID, AccountId: w.AccountID, Url: w.URL, EventTypes: w.EventTypes, Enabled: w.Enabled,
		Description: w.Description, SecretHint: domain.Hint(w.Secret), DisabledReason: w.DisabledReason,
		CreateTime: timestamppb.New(w.CreateTime), UpdateTime: timestamppb.New(w.UpdateTime),
		TimeoutSeconds: int32(w.Timeout / time.Second), SendTraceContext: proto.Bool(w.SendTraceContext),
	}
	switch w.Auth.Kind {
	case domain.AuthAPIKey:
		out.Auth = &webhooksv1.Auth{Kind: &webhooksv1.Auth_ApiKeyHeader{ApiKeyHeader: &webhooksv1.ApiKeyHeader{
			Name: w.Auth.HeaderName, ValueHint: domain.Hint(w.Auth.Value)}}}
	case domain.AuthBearer:
		out.Auth = &webhooksv1.Auth{Kind: &webhooksv1.Auth_Bearer{Bearer: &webhooksv1.BearerToken{
			TokenHint: domain.Hint(w.Auth.Value)}}}
	}
	return out
}

func authFromProto(a *webhooksv1.Auth) domain.Auth {
	switch k := a.GetKind().(type) {
	case *webhooksv1.Auth_ApiKeyHeader:
		return domain.Auth{Kind: domain.AuthAPIKey, HeaderName: k.ApiKeyHeader.GetName(), Value: k.ApiKeyHeader.GetValue()}
	case *webhooksv1.Auth_Bearer:
		return domain.Auth{Kind: domain.AuthBearer, Value: k.Bearer.GetToken()}
	}
	return domain.Auth{Kind: domain.AuthNone}
}

// configToProto is the dispatcher view, with decrypted secrets.
func configToProto(w domain.Webhook, now time.Time) *webhooksv1.WebhookConfig {
	name, value := w.Auth.Header()
	out := &webhooksv1.WebhookConfig{
		Id: w.ID, AccountId: w.AccountID, Url: w.URL, EventTypes: w.EventTypes, Enabled: w.Enabled,
		Secrets:        []*webhooksv1.SigningSecret{{Secret: w.Secret}},
		AuthHeaderName: name, AuthHeaderValue: value,
		TimeoutMs: int32(delivery.DefaultTimeout / time.Millisecond), Version: w.Version,
		SendTraceContext: w.SendTraceContext,
	}
	if w.Timeout > 0 {
		out.TimeoutMs = int32(w.Timeout / time.Millisecond)
	}
	if w.Unreadable != "" {
		// Never deliver unsigned or without the configured auth: serve it disabled.
		out.Enabled, out.Secrets, out.AuthHeaderName, out.AuthHeaderValue = false, nil, "", ""
		return out
	}
	if w.PrevSecret != "" && now.Before(w.PrevSecretExpireTime) {
		out.Secrets = append(out.Secrets, &webhooksv1.SigningSecret{
			Secret: w.PrevSecret, ExpireTime: timestamppb.New(w.PrevSecretExpireTime)})
	}
	return out
}

func attemptToProto(a domain.Attempt) *webhooksv1.DeliveryAttempt {
	out := &webhooksv1.DeliveryAttempt{
		Id: a.ID, DeliveryId: a.DeliveryID, EventId: a.EventID, EventType: a.EventType, WebhookId: a.WebhookID,
		Attempt: a.Attempt, Outcome: webhooksv1.Outcome(a.Outcome), Test: a.Test, RequestHeaders: a.RequestHeaders,
		ResponseStatus: a.ResponseStatus, ResponseBody: a.ResponseBody, DurationMs: a.DurationMS, Error: a.Error,
		AttemptTime: timestamppb.New(a.Time), Url: a.URL,
	}
	if !a.NextRetryTime.IsZero() {
		out.NextRetryTime = timestamppb.New(a.NextRetryTime)
	}
	return out
}

// AttemptFromRecord converts a dispatcher's attempt record.
func AttemptFromRecord(r *webhooksv1.AttemptRecord) domain.Attempt {
	a := domain.Attempt{
		ID: r.GetAttemptId(), DeliveryID: r.GetDeliveryId(), EventID: r.GetEventId(), EventType: r.GetEventType(),
		AccountID: r.GetAccountId(), WebhookID: r.GetWebhookId(), URL: r.GetUrl(), Attempt: r.GetAttempt(),
		Outcome: domain.Outcome(r.GetOutcome()), Test: r.GetTest(), RequestHeaders: r.GetRequestHeaders(),
		ResponseStatus: r.GetResponseStatus(), ResponseBody: r.GetResponseBody(), DurationMS: r.GetDurationMs(),
		Error: r.GetError(), Payload: r.GetPayload(), Gone: r.GetGone(), Deferral: r.GetDeferral(),
	}
	if r.GetAttemptTime() != nil {
		a.Time = r.GetAttemptTime().AsTime()
	}
	if r.GetNextRetryTime() != nil {
		a.NextRetryTime = r.GetNextRetryTime().AsTime()
	}
	return a
}

func timeOrZero(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

func timestampOf(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

func apiKeyToProto(k domain.APIKey) *webhooksv1.ApiKey {
	out := &webhooksv1.ApiKey{
		Id: k.ID, Name: k.Name, Role: string(k.Role), Hint: k.Hint, CreateTime: timestamppb.New(k.CreateTime),
	}
	if !k.LastUsedTime.IsZero() {
		out.LastUsedTime = timestamppb.New(k.LastUsedTime)
	}
	return out
}
