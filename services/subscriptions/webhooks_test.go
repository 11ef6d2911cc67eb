package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/streams"
)

func validCreate() *webhooksv1.CreateWebhookRequest {
	return &webhooksv1.CreateWebhookRequest{
		Url: "https://hooks.example.com/ct", EventTypes: []string{"new_contact"},
		Description: "CRM sync",
	}
}

// rpcs calls every WebhookService method with a minimal request.
func rpcs(c webhooksv1.WebhookServiceClient) map[string]func(ctx context.Context) error {
	return map[string]func(ctx context.Context) error{
		"CreateWebhook": func(ctx context.Context) error { _, err := c.CreateWebhook(ctx, validCreate()); return err },
		"GetWebhook": func(ctx context.Context) error {
			_, err := c.GetWebhook(ctx, &webhooksv1.GetWebhookRequest{Id: "wh_x"})
			return err
		},
		"ListWebhooks": func(ctx context.Context) error {
			_, err := c.ListWebhooks(ctx, &webhooksv1.ListWebhooksRequest{})
			return err
		},
		"UpdateWebhook": func(ctx context.Context) error {
			_, err := c.UpdateWebhook(ctx, &webhooksv1.UpdateWebhookRequest{Webhook: &webhooksv1.Webhook{Id: "wh_x", Description: "d"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"description"}}})
			return err
		},
		"DeleteWebhook": func(ctx context.Context) error {
			_, err := c.DeleteWebhook(ctx, &webhooksv1.DeleteWebhookRequest{Id: "wh_x"})
			return err
		},
		"EnableWebhook": func(ctx context.Context) error {
			_, err := c.EnableWebhook(ctx, &webhooksv1.EnableWebhookRequest{Id: "wh_x"})
			return err
		},
		"DisableWebhook": func(ctx context.Context) error {
			_, err := c.DisableWebhook(ctx, &webhooksv1.DisableWebhookRequest{Id: "wh_x"})
			return err
		},
		"SendTestEvent": func(ctx context.Context) error {
			_, err := c.SendTestEvent(ctx, &webhooksv1.SendTestEventRequest{Id: "wh_x"})
			return err
		},
		"ListDeliveryAttempts": func(ctx context.Context) error {
			_, err := c.ListDeliveryAttempts(ctx, &webhooksv1.ListDeliveryAttemptsRequest{})
			return err
		},
		"RedeliverDelivery": func(ctx context.Context) error {
			_, err := c.RedeliverDelivery(ctx, &webhooksv1.RedeliverDeliveryRequest{DeliveryId: "del_x"})
			return err
		},
		"RedeliverFailed": func(ctx context.Context) error {
			_, err := c.RedeliverFailed(ctx, &webhooksv1.RedeliverFailedRequest{WebhookId: "wh_x"})
			return err
		},
		"RotateSigningSecret": func(ctx context.Context) error {
			_, err := c.RotateSigningSecret(ctx, &webhooksv1.RotateSigningSecretRequest{Id: "wh_x"})
			return err
		},
		"ListEventTypes": func(ctx context.Context) error {
			_, err := c.ListEventTypes(ctx, &webhooksv1.ListEventTypesRequest{})
			return err
		},
		"ListEventSamples": func(ctx context.Context) error {
			_, err := c.ListEventSamples(ctx, &webhooksv1.ListEventSamplesRequest{EventType: "new_contact"})
			return err
		},
		"RecoverEvents": func(ctx context.Context) error {
			_, err := c.RecoverEvents(ctx, &webhooksv1.RecoverEventsRequest{WebhookId: "wh_x", StartTime: timestamppb.Now()})
			return err
		},
		"IssueApiKey": func(ctx context.Context) error {
			_, err := c.IssueApiKey(ctx, &webhooksv1.IssueApiKeyRequest{Name: "k", Role: "user"})
			return err
		},
		"ListApiKeys": func(ctx context.Context) error {
			_, err := c.ListApiKeys(ctx, &webhooksv1.ListApiKeysRequest{})
			return err
		},
		"RevokeApiKey": func(ctx context.Context) error {
			_, err := c.RevokeApiKey(ctx, &webhooksv1.RevokeApiKeyRequest{Id: "key_x"})
			return err
		},
	}
}

func TestPermissionMatrix(t *testing.T) {
	e := newEnv(t)
	_, keys := e.account("Acme")
	calls := rpcs(e.webhooks)
	if got := len(calls); got != len(webhooksv1.WebhookService_ServiceDesc.Methods) {
		t.Fatalf("matrix covers %d methods, want all %d", got, len(webhooksv1.WebhookService_ServiceDesc.Methods))
	}
	for name, call := range calls {
		for _, role := range []webhooksv1.Role{webhooksv1.Role_ROLE_ADMIN, webhooksv1.Role_ROLE_MANAGER, webhooksv1.Role_ROLE_USER} {
			t.Run(name+"/"+role.String(), func(t *testing.T) {
				err := call(as(keys[role]))
				code := status.Code(err)
				if role == webhooksv1.Role_ROLE_ADMIN {
					if code == codes.PermissionDenied || code == codes.Unauthenticated || code == codes.Internal {
						t.Fatalf("admin: got %s (%v), want the call to be allowed", code, err)
					}
					return
				}
				wantCode(t, err, codes.PermissionDenied)
				if msg := status.Convert(err).Message(); !strings.Contains(msg, "only account admins") {
					t.Errorf("message: got %q, want it to say only account admins may", msg)
				}
			})
		}
		t.Run(name+"/no key", func(t *testing.T) { wantCode(t, call(context.Background()), codes.Unauthenticated) })
		t.Run(name+"/unknown key", func(t *testing.T) { wantCode(t, call(as("ctk_unknown")), codes.Unauthenticated) })
		t.Run(name+"/service token", func(t *testing.T) { wantCode(t, call(as(testServiceToken)), codes.Unauthenticated) })
	}
}

func TestInternalServicesRequireServiceToken(t *testing.T) {
	e := newEnv(t)
	_, keys := e.account("Acme")
	calls := map[string]func(ctx context.Context) error{
		"ListWebhookConfigs": func(ctx context.Context) error {
			_, err := e.configs.ListWebhookConfigs(ctx, &webhooksv1.ListWebhookConfigsRequest{})
			return err
		},
		"GetWebhookConfig": func(ctx context.Context) error {
			_, err := e.configs.GetWebhookConfig(ctx, &webhooksv1.GetWebhookConfigRequest{Id: "wh_x"})
			return err
		},
		"CreateAccount": func(ctx context.Context) error {
			_, err := e.accounts.CreateAccount(ctx, &webhooksv1.CreateAccountRequest{Name: "x"})
			return err
		},
		"CreateApiKey": func(ctx context.Context) error {
			_, err := e.accounts.CreateApiKey(ctx, &webhooksv1.CreateApiKeyRequest{})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name+"/admin key", func(t *testing.T) { wantCode(t, call(as(keys[webhooksv1.Role_ROLE_ADMIN])), codes.Unauthenticated) })
		t.Run(name+"/no key", func(t *testing.T) { wantCode(t, call(context.Background()), codes.Unauthenticated) })
		t.Run(name+"/service token", func(t *testing.T) {
			if code := status.Code(call(e.service())); code == codes.Unauthenticated || code == codes.PermissionDenied {
				t.Fatalf("service token: got %s, want the call to be allowed", code)
			}
		})
	}
}

func TestCreateWebhookValidation(t *testing.T) {
	e := newEnv(t)
	_, ctx := e.admin("Acme")
	long := strings.Repeat("a", 2049)
	tests := []struct {
		name  string
		edit  func(r *webhooksv1.CreateWebhookRequest)
		field string
	}{
		{"missing url", func(r *webhooksv1.CreateWebhookRequest) { r.Url = "" }, "url"},
		{"relative url", func(r *webhooksv1.CreateWebhookRequest) { r.Url = "/hooks" }, "url"},
		{"ftp url", func(r *webhooksv1.CreateWebhookRequest) { r.Url = "ftp://example.com/x" }, "url"},
		{"user info", func(r *webhooksv1.CreateWebhookRequest) { r.Url = "https://bob:pw@example.com/x" }, "url"},
		{"url too long", func(r *webhooksv1.CreateWebhookRequest) { r.Url = "https://example.com/" + long }, "url"},
		{"url with space", func(r *webhooksv1.CreateWebhookRequest) { r.Url = "https://example.com/a b" }, "url"},
		{"no host", func(r *webhooksv1.CreateWebhookRequest) { r.Url = "https:///path" }, "url"},
		{"no event types", func(r *webhooksv1.CreateWebhookRequest) { r.EventTypes = nil }, "event_types"},
		{"unknown event type", func(r *webhooksv1.CreateWebhookRequest) { r.EventTypes = []string{"new_contact", "order_paid"} }, "event_types"},
		{"description too long", func(r *webhooksv1.CreateWebhookRequest) { r.Description = strings.Repeat("d", 501) }, "description"},
		{"api key header missing name", func(r *webhooksv1.CreateWebhookRequest) { r.Auth = apiKeyAuth("", "secret-value-1234") }, "auth.api_key_header.name"},
		{"api key header bad name", func(r *webhooksv1.CreateWebhookRequest) { r.Auth = apiKeyAuth("X Key", "secret-value-1234") }, "auth.api_key_header.name"},
		{"api key header name too long", func(r *webhooksv1.CreateWebhookRequest) { r.Auth = apiKeyAuth(strings.Repeat("x", 129), "v") }, "auth.api_key_header.name"},
		{"reserved Host", func(r *webhooksv1.CreateWebhookRequest) { r.Auth = apiKeyAuth("Host", "v") }, "auth.api_key_header.name"},
		{"reserved Content-Type", func(r *webhooksv1.CreateWebhookRequest) { r.Auth = apiKeyAuth("content-type", "v") }, "auth.api_key_header.name"},
		{"reserved Authorization", func(r *webhooksv1.CreateWebhookRequest) { r.Auth = apiKeyAuth("Authorization", "v") }, "auth.api_key_header.name"},
		{"reserved traceparent", func(r *webhooksv1.CreateWebhookRequest) { r.Auth = apiKeyAuth("traceparent", "v") }, "auth.api_key_header.name"},
		{"reserved webhook-*", func(r *webhooksv1.CreateWebhookRequest) { r.Auth = apiKeyAuth("Webhook-Signature", "v") }, "auth.api_key_header.name"},
		{"api key value missing", func(r *webhooksv1.CreateWebhookRequest) { r.Auth = apiKeyAuth("X-Api-Key", "") }, "auth.api_key_header.value"},
		{"api key value CRLF", func(r *webhooksv1.CreateWebhookRequest) { r.Auth = apiKeyAuth("X-Api-Key", "abc\r\nX-Evil: 1") }, "auth.api_key_header.value"},
		{"api key value too long", func(r *webhooksv1.CreateWebhookRequest) { r.Auth = apiKeyAuth("X-Api-Key", strings.Repeat("v", 4097)) }, "auth.api_key_header.value"},
		{"bearer token missing", func(r *webhooksv1.CreateWebhookRequest) { r.Auth = bearerAuth("") }, "auth.bearer.token"},
		{"bearer token control char", func(r *webhooksv1.CreateWebhookRequest) { r.Auth = bearerAuth("tok\x00en") }, "auth.bearer.token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := validCreate()
			tt.edit(req)
			_, err := e.webhooks.CreateWebhook(ctx, req)
			wantCode(t, err, codes.InvalidArgument)
			if got := fieldOf(err); got != tt.field {
				t.Errorf("field: got %q, want %q (%v)", got, tt.field, err)
			}
			if !strings.Contains(status.Convert(err).Message(), tt.field) {
				t.Errorf("message %q does not name the field %q", status.Convert(err).Message(), tt.field)
			}
		})
	}
	var n int
	if err := e.db().QueryRow(context.Background(), "SELECT count(*) FROM subscriptions.webhooks").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("webhooks stored after invalid requests: got %d, want 0", n)
	}
}

func TestHTTPURLRefusedUnlessInsecureAllowed(t *testing.T) {
	e := newEnv(t, "-allow-insecure-http", "false")
	_, ctx := e.admin("Acme")
	req := validCreate()
	req.Url = "http://hooks.example.com/x"
	_, err := e.webhooks.CreateWebhook(ctx, req)
	wantCode(t, err, codes.InvalidArgument)
	if got := fieldOf(err); got != "url" {
		t.Errorf("field: got %q, want url", got)
	}
}

func apiKeyAuth(name, value string) *webhooksv1.Auth {
	return &webhooksv1.Auth{Kind: &webhooksv1.Auth_ApiKeyHeader{ApiKeyHeader: &webhooksv1.ApiKeyHeader{Name: name, Value: value}}}
}

func bearerAuth(token string) *webhooksv1.Auth {
	return &webhooksv1.Auth{Kind: &webhooksv1.Auth_Bearer{Bearer: &webhooksv1.BearerToken{Token: token}}}
}

func TestCreateGetWebhookAndSecretsAtRest(t *testing.T) {
	e := newEnv(t)
	accountID, ctx := e.admin("Acme")
	const apiKeyValue = "live-api-key-value-9876"
	const bearerToken = "bearer-token-value-5432"
	tests := []struct {
		name       string
		auth       *webhooksv1.Auth
		secret     string
		wantAuth   *webhooksv1.Auth
		headerName string
		headerVal  string
	}{
		{name: "api key header", auth: apiKeyAuth("X-Api-Key", apiKeyValue), secret: apiKeyValue,
			wantAuth:   &webhooksv1.Auth{Kind: &webhooksv1.Auth_ApiKeyHeader{ApiKeyHeader: &webhooksv1.ApiKeyHeader{Name: "X-Api-Key", ValueHint: "9876"}}},
			headerName: "X-Api-Key", headerVal: apiKeyValue},
		{name: "bearer", auth: bearerAuth(bearerToken), secret: bearerToken,
			wantAuth:   &webhooksv1.Auth{Kind: &webhooksv1.Auth_Bearer{Bearer: &webhooksv1.BearerToken{TokenHint: "5432"}}},
			headerName: "Authorization", headerVal: "Bearer " + bearerToken},
		{name: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := validCreate()
			req.Auth = tt.auth
			req.EventTypes = []string{"new_contact", "inbound_message", "new_contact"}
			created := e.createWebhook(ctx, req)
			if !strings.HasPrefix(created.GetSigningSecret(), "whsec_") {
				t.Fatalf("signing secret: got %q, want whsec_…", created.GetSigningSecret())
			}
			got, err := e.webhooks.GetWebhook(ctx, &webhooksv1.GetWebhookRequest{Id: created.GetWebhook().GetId()})
			if err != nil {
				t.Fatalf("GetWebhook: %v", err)
			}
			want := &webhooksv1.Webhook{
				Id: created.GetWebhook().GetId(), AccountId: accountID, Url: req.GetUrl(),
				EventTypes: []string{"new_contact", "inbound_message"}, Enabled: true, Description: "CRM sync",
				Auth: tt.wantAuth, SecretHint: created.GetSigningSecret()[len(created.GetSigningSecret())-4:],
				CreateTime: got.GetWebhook().GetCreateTime(), UpdateTime: got.GetWebhook().GetUpdateTime(),
				SendTraceContext: proto.Bool(false),
			}
			if diff := cmp.Diff(want, got.GetWebhook(), cmpProto()); diff != "" {
				t.Errorf("GetWebhook (-want +got):\n%s", diff)
			}
			if !proto.Equal(created.GetWebhook(), got.GetWebhook()) {
				t.Errorf("create response and get differ:\ncreate %v\nget    %v", created.GetWebhook(), got.GetWebhook())
			}
			// Raw table: neither the auth value nor the signing secret is stored in clear text.
			var row string
			if err := e.db().QueryRow(context.Background(),
				"SELECT w::text FROM subscriptions.webhooks w WHERE id = $1", created.GetWebhook().GetId()).Scan(&row); err != nil {
				t.Fatal(err)
			}
			secretBody := strings.TrimPrefix(created.GetSigningSecret(), "whsec_")
			for _, clear := range []string{secretBody, tt.secret} {
				if clear != "" && strings.Contains(row, clear) {
					t.Errorf("raw row contains a secret in clear text: %q", row)
				}
			}
			// Dispatchers get the decrypted values.
			cfg, err := e.configs.GetWebhookConfig(e.service(), &webhooksv1.GetWebhookConfigRequest{Id: created.GetWebhook().GetId()})
			if err != nil {
				t.Fatalf("GetWebhookConfig: %v", err)
			}
			wantCfg := &webhooksv1.WebhookConfig{
				Id: created.GetWebhook().GetId(), AccountId: accountID, Url: req.GetUrl(),
				EventTypes: []string{"new_contact", "inbound_message"}, Enabled: true,
				Secrets:        []*webhooksv1.SigningSecret{{Secret: created.GetSigningSecret()}},
				AuthHeaderName: tt.headerName, AuthHeaderValue: tt.headerVal, TimeoutMs: 10000,
				Version: cfg.GetConfig().GetVersion(),
			}
			if diff := cmp.Diff(wantCfg, cfg.GetConfig(), cmpProto()); diff != "" {
				t.Errorf("GetWebhookConfig (-want +got):\n%s", diff)
			}
		})
	}
}

func TestListWebhooksPaginationAndFilters(t *testing.T) {
	e := newEnv(t)
	_, ctx := e.admin("Acme")
	var ids []string
	for i := range 7 {
		req := validCreate()
		req.Url = fmt.Sprintf("https://hooks.example.com/%d", i)
		req.Enabled = proto.Bool(i%2 == 0)
		if i >= 5 {
			req.EventTypes = []string{"campaign_sent"}
		}
		ids = append(ids, e.createWebhook(ctx, req).GetWebhook().GetId())
	}
	tru, fls := true, false
	tests := []struct {
		name string
		req  *webhooksv1.ListWebhooksRequest
		want []string
	}{
		{"all", &webhooksv1.ListWebhooksRequest{PageSize: 3}, ids},
		{"event type", &webhooksv1.ListWebhooksRequest{PageSize: 2, EventType: "campaign_sent"}, ids[5:]},
		{"enabled", &webhooksv1.ListWebhooksRequest{PageSize: 2, Enabled: &tru}, []string{ids[0], ids[2], ids[4], ids[6]}},
		{"disabled", &webhooksv1.ListWebhooksRequest{PageSize: 2, Enabled: &fls}, []string{ids[1], ids[3], ids[5]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			pages := 0
			req := proto.Clone(tt.req).(*webhooksv1.ListWebhooksRequest)
			for {
				resp, err := e.webhooks.ListWebhooks(ctx, req)
				if err != nil {
					t.Fatalf("ListWebhooks: %v", err)
				}
				pages++
				if n := len(resp.GetWebhooks()); n > int(req.GetPageSize()) {
					t.Fatalf("page of %d, want at most %d", n, req.GetPageSize())
				}
				for _, w := range resp.GetWebhooks() {
					got = append(got, w.GetId())
				}
				if resp.GetNextPageToken() == "" {
					break
				}
				req.PageToken = resp.GetNextPageToken()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if wantPages := (len(tt.want) + int(tt.req.GetPageSize()) - 1) / int(tt.req.GetPageSize()); pages < wantPages {
				t.Errorf("pages: got %d, want at least %d", pages, wantPages)
			}
		})
	}
	t.Run("bad token", func(t *testing.T) {
		_, err := e.webhooks.ListWebhooks(ctx, &webhooksv1.ListWebhooksRequest{PageToken: "garbage!"})
		wantCode(t, err, codes.InvalidArgument)
	})
	t.Run("unknown event type filter", func(t *testing.T) {
		_, err := e.webhooks.ListWebhooks(ctx, &webhooksv1.ListWebhooksRequest{EventType: "nope"})
		wantCode(t, err, codes.InvalidArgument)
	})
}

func TestCrossAccountIsolation(t *testing.T) {
	e := newEnv(t)
	_, ctxA := e.admin("A")
	_, ctxB := e.admin("B")
	id := e.createWebhook(ctxA, validCreate()).GetWebhook().GetId()
	calls := map[string]func() error{
		"GetWebhook": func() error { _, err := e.webhooks.GetWebhook(ctxB, &webhooksv1.GetWebhookRequest{Id: id}); return err },
		"UpdateWebhook": func() error {
			_, err := e.webhooks.UpdateWebhook(ctxB, &webhooksv1.UpdateWebhookRequest{Webhook: &webhooksv1.Webhook{Id: id, Description: "x"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"description"}}})
			return err
		},
		"DeleteWebhook": func() error {
			_, err := e.webhooks.DeleteWebhook(ctxB, &webhooksv1.DeleteWebhookRequest{Id: id})
			return err
		},
		"EnableWebhook": func() error {
			_, err := e.webhooks.EnableWebhook(ctxB, &webhooksv1.EnableWebhookRequest{Id: id})
			return err
		},
		"DisableWebhook": func() error {
			_, err := e.webhooks.DisableWebhook(ctxB, &webhooksv1.DisableWebhookRequest{Id: id})
			return err
		},
		"SendTestEvent": func() error {
			_, err := e.webhooks.SendTestEvent(ctxB, &webhooksv1.SendTestEventRequest{Id: id})
			return err
		},
		"RotateSigningSecret": func() error {
			_, err := e.webhooks.RotateSigningSecret(ctxB, &webhooksv1.RotateSigningSecretRequest{Id: id})
			return err
		},
		"RedeliverFailed": func() error {
			_, err := e.webhooks.RedeliverFailed(ctxB, &webhooksv1.RedeliverFailedRequest{WebhookId: id})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) { wantCode(t, call(), codes.NotFound) })
	}
	t.Run("ListWebhooks", func(t *testing.T) {
		resp, err := e.webhooks.ListWebhooks(ctxB, &webhooksv1.ListWebhooksRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(resp.GetWebhooks()); n != 0 {
			t.Errorf("B sees %d webhooks, want 0", n)
		}
	})
	// A's webhook is untouched.
	got, err := e.webhooks.GetWebhook(ctxA, &webhooksv1.GetWebhookRequest{Id: id})
	if err != nil {
		t.Fatalf("A GetWebhook: %v", err)
	}
	if got.GetWebhook().GetDescription() != "CRM sync" || !got.GetWebhook().GetEnabled() {
		t.Errorf("A's webhook changed by B: %v", got.GetWebhook())
	}
}

func TestChangeNotifications(t *testing.T) {
	e := newEnv(t)
	_, ctx := e.admin("Acme")
	sub, err := e.nc.SubscribeSync(streams.WebhookChangesPrefix + ">")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	id := e.createWebhook(ctx, validCreate()).GetWebhook().GetId()
	version := func() int64 {
		cfg, err := e.configs.GetWebhookConfig(e.service(), &webhooksv1.GetWebhookConfigRequest{Id: id})
		if err != nil {
			t.Fatalf("GetWebhookConfig: %v", err)
		}
		return cfg.GetConfig().GetVersion()
	}
	expectNotification := func(t *testing.T) {
		t.Helper()
		msg, err := sub.NextMsg(30 * time.Second)
		if err != nil {
			t.Fatalf("no change notification: %v", err)
		}
		if want := streams.WebhookChangesPrefix + id; msg.Subject != want {
			t.Fatalf("subject: got %q, want %q", msg.Subject, want)
		}
	}
	expectNotification(t)
	last := version()
	steps := []struct {
		name string
		do   func() error
	}{
		{"update", func() error {
			_, err := e.webhooks.UpdateWebhook(ctx, &webhooksv1.UpdateWebhookRequest{
				Webhook: &webhooksv1.Webhook{Id: id, Url: "https://other.example.com/x"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"url"}}})
			return err
		}},
		{"disable", func() error {
			_, err := e.webhooks.DisableWebhook(ctx, &webhooksv1.DisableWebhookRequest{Id: id})
			return err
		}},
		{"enable", func() error {
			_, err := e.webhooks.EnableWebhook(ctx, &webhooksv1.EnableWebhookRequest{Id: id})
			return err
		}},
		{"rotate", func() error {
			_, err := e.webhooks.RotateSigningSecret(ctx, &webhooksv1.RotateSigningSecretRequest{Id: id})
			return err
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := st.do(); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			expectNotification(t)
			if v := version(); v <= last {
				t.Errorf("version after %s: got %d, want > %d", st.name, v, last)
			} else {
				last = v
			}
		})
	}
	t.Run("delete", func(t *testing.T) {
		if _, err := e.webhooks.DeleteWebhook(ctx, &webhooksv1.DeleteWebhookRequest{Id: id}); err != nil {
			t.Fatal(err)
		}
		expectNotification(t)
		_, err := e.configs.GetWebhookConfig(e.service(), &webhooksv1.GetWebhookConfigRequest{Id: id})
		wantCode(t, err, codes.NotFound)
		_, err = e.webhooks.GetWebhook(ctx, &webhooksv1.GetWebhookRequest{Id: id})
		wantCode(t, err, codes.NotFound)
	})
}

func TestListWebhookConfigsAcrossAccounts(t *testing.T) {
	e := newEnv(t)
	_, ctxA := e.admin("A")
	_, ctxB := e.admin("B")
	want := map[string]bool{}
	for i, ctx := range []context.Context{ctxA, ctxB, ctxA, ctxB, ctxA} {
		req := validCreate()
		req.Enabled = proto.Bool(i != 2)
		want[e.createWebhook(ctx, req).GetWebhook().GetId()] = true
	}
	got := map[string]bool{}
	req := &webhooksv1.ListWebhookConfigsRequest{PageSize: 2}
	for {
		resp, err := e.configs.ListWebhookConfigs(e.service(), req)
		if err != nil {
			t.Fatalf("ListWebhookConfigs: %v", err)
		}
		for _, c := range resp.GetConfigs() {
			if got[c.GetId()] {
				t.Errorf("config %s listed twice", c.GetId())
			}
			got[c.GetId()] = true
			if len(c.GetSecrets()) != 1 || !strings.HasPrefix(c.GetSecrets()[0].GetSecret(), "whsec_") {
				t.Errorf("config %s secrets: got %v, want one whsec_ secret", c.GetId(), c.GetSecrets())
			}
		}
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("configs (-want +got):\n%s", diff)
	}
}

func TestCreateAccountCLI(t *testing.T) {
	e := newEnv(t)
	var out strings.Builder
	err := run(context.Background(), []string{"create-account", "-name", "Acme CLI", "-admin-email", "boss@acme.test", "-database-url", e.dbURL},
		func(string) string { return "" }, &out)
	if err != nil {
		t.Fatalf("create-account: %v", err)
	}
	vals := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		k, v, _ := strings.Cut(line, "=")
		vals[k] = v
	}
	if !strings.HasPrefix(vals["account_id"], "acc_") || !strings.HasPrefix(vals["api_key"], "ctk_") {
		t.Fatalf("output: got %q, want account_id=acc_… and api_key=ctk_…", out.String())
	}
	resp, err := e.webhooks.CreateWebhook(as(vals["api_key"]), validCreate())
	if err != nil {
		t.Fatalf("CreateWebhook with the CLI's admin key: %v", err)
	}
	if got := resp.GetWebhook().GetAccountId(); got != vals["account_id"] {
		t.Errorf("account: got %q, want %q", got, vals["account_id"])
	}
	// The key is stored hashed only.
	var n int
	if err := e.db().QueryRow(context.Background(),
		"SELECT count(*) FROM subscriptions.api_keys WHERE position($1::bytea in key_hash) > 0", []byte(vals["api_key"])).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("api key stored in clear text")
	}
	t.Run("missing flags", func(t *testing.T) {
		if err := run(context.Background(), []string{"create-account", "-name", "x"}, func(string) string { return "" }, &strings.Builder{}); err == nil {
			t.Fatal("create-account without -admin-email: got nil error, want one")
		}
	})
}

func TestSecretsNeverLogged(t *testing.T) {
	e := newEnv(t, "-log-level", "debug")
	_, ctx := e.admin("Acme")
	rcv := newReceiver(t, http.StatusUnauthorized)
	req := validCreate()
	req.Url = rcv.srv.URL
	req.Auth = bearerAuth("bearer-never-logged-777")
	created := e.createWebhook(ctx, req)
	id := created.GetWebhook().GetId()
	if _, err := e.webhooks.UpdateWebhook(ctx, &webhooksv1.UpdateWebhookRequest{
		Webhook: &webhooksv1.Webhook{Id: id, Auth: apiKeyAuth("X-Key", "apikey-never-logged-888")}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"auth"}}}); err != nil {
		t.Fatal(err)
	}
	rot, err := e.webhooks.RotateSigningSecret(ctx, &webhooksv1.RotateSigningSecretRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.webhooks.SendTestEvent(ctx, &webhooksv1.SendTestEventRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	_, _ = e.webhooks.CreateWebhook(ctx, &webhooksv1.CreateWebhookRequest{Url: "https://e.com", EventTypes: []string{"new_contact"},
		Auth: apiKeyAuth("Host", "invalid-request-secret-999")})
	logs := e.logs.String()
	if !strings.Contains(logs, id) {
		t.Fatalf("logs do not mention the webhook at all; is logging on? %q", logs)
	}
	for _, secret := range []string{
		"bearer-never-logged-777", "apikey-never-logged-888", "invalid-request-secret-999",
		strings.TrimPrefix(created.GetSigningSecret(), "whsec_"), strings.TrimPrefix(rot.GetSigningSecret(), "whsec_"),
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain a secret (%s…)", secret[:6])
		}
	}
}

func TestRedeliverDeletedWebhook(t *testing.T) {
	e := newEnv(t)
	accountID, ctx := e.admin("Acme")
	id := e.createWebhook(ctx, validCreate()).GetWebhook().GetId()
	e.publishAttempt(t, record(accountID, id, "del_x", 1, webhooksv1.Outcome_OUTCOME_DEAD_LETTERED, time.Now()))
	eventually(t, "attempt listed", func() error {
		resp, err := e.webhooks.ListDeliveryAttempts(ctx, &webhooksv1.ListDeliveryAttemptsRequest{})
		if err != nil || len(resp.GetAttempts()) != 1 {
			return errNotYet
		}
		return nil
	})
	if _, err := e.webhooks.DeleteWebhook(ctx, &webhooksv1.DeleteWebhookRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	_, err := e.webhooks.RedeliverDelivery(ctx, &webhooksv1.RedeliverDeliveryRequest{DeliveryId: "del_x"})
	wantCode(t, err, codes.FailedPrecondition)
	_, err = e.webhooks.RedeliverDelivery(ctx, &webhooksv1.RedeliverDeliveryRequest{})
	wantCode(t, err, codes.InvalidArgument)
	_, err = e.webhooks.RedeliverDelivery(ctx, &webhooksv1.RedeliverDeliveryRequest{DeliveryId: "del_unknown"})
	wantCode(t, err, codes.NotFound)
}

// TestAPIKeyCLI issues and revokes keys with the operator CLI next to create-account.
func TestAPIKeyCLI(t *testing.T) {
	e := newEnv(t)
	accountID, keys := e.account("Acme")
	cli := func(args ...string) (map[string]string, error) {
		var out strings.Builder
		err := run(context.Background(), append(args, "-database-url", e.dbURL), func(string) string { return "" }, &out)
		vals := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			k, v, _ := strings.Cut(line, "=")
			vals[k] = v
		}
		return vals, err
	}
	vals, err := cli("create-api-key", "-account-id", accountID, "-name", "Make", "-role", "admin")
	if err != nil {
		t.Fatalf("create-api-key: %v", err)
	}
	if !strings.HasPrefix(vals["api_key"], "ctk_") || !strings.HasPrefix(vals["key_id"], "key_") || vals["role"] != "admin" {
		t.Fatalf("create-api-key output: %v", vals)
	}
	if _, err := e.webhooks.ListWebhooks(as(vals["api_key"]), &webhooksv1.ListWebhooksRequest{}); err != nil {
		t.Fatalf("ListWebhooks with the CLI's key: %v", err)
	}
	if _, err := cli("create-api-key", "-account-id", accountID, "-name", "x", "-role", "owner"); err == nil {
		t.Error("create-api-key -role owner: got nil error, want one")
	}
	if _, err := cli("revoke-api-key", "-account-id", accountID, "-id", vals["key_id"]); err != nil {
		t.Fatalf("revoke-api-key: %v", err)
	}
	_, err = e.webhooks.ListWebhooks(as(vals["api_key"]), &webhooksv1.ListWebhooksRequest{})
	wantCode(t, err, codes.Unauthenticated)
	// The account's own admin key is now its last: the CLI refuses to revoke it.
	list, err := e.webhooks.ListApiKeys(as(keys[webhooksv1.Role_ROLE_ADMIN]), &webhooksv1.ListApiKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range list.GetApiKeys() {
		if k.GetRole() == "admin" {
			if _, err := cli("revoke-api-key", "-account-id", accountID, "-id", k.GetId()); err == nil || !strings.Contains(err.Error(), "last admin") {
				t.Errorf("revoke the last admin key: got %v, want a refusal naming the last admin key", err)
			}
		}
	}
}
