package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
)

func TestLiteralReservedAddressesRefused(t *testing.T) {
	e := newEnv(t) // allow-list 127.0.0.0/8, as development setups have
	_, ctx := e.admin("Acme")
	for _, u := range []string{
		"http://169.254.169.254/latest/meta-data", "https://10.0.0.1/hook", "https://192.168.1.1/",
		"https://0.0.0.0/", "https://[::1]/hook", "https://[fe80::1]/", "https://192.88.99.1/",
		"https://[3fff::1]/", "https://[5f00::1]/", "https://[::ffff:169.254.169.254]/", "https://100.64.0.1/",
	} {
		req := validCreate()
		req.Url = u
		_, err := e.webhooks.CreateWebhook(ctx, req)
		if status.Code(err) != codes.InvalidArgument || fieldOf(err) != "url" {
			t.Errorf("CreateWebhook(%s): got %v (field %q), want INVALID_ARGUMENT on url", u, err, fieldOf(err))
		}
	}
	// The allow-list still applies, and names are left to the dial-time guard.
	for _, u := range []string{"http://127.0.0.1:9/hook", "https://hooks.example.com/x"} {
		req := validCreate()
		req.Url = u
		if _, err := e.webhooks.CreateWebhook(ctx, req); err != nil {
			t.Errorf("CreateWebhook(%s): %v, want it accepted", u, err)
		}
	}
	id := e.createWebhook(ctx, validCreate()).GetWebhook().GetId()
	_, err := e.webhooks.UpdateWebhook(ctx, &webhooksv1.UpdateWebhookRequest{
		Webhook:    &webhooksv1.Webhook{Id: id, Url: "http://169.254.169.254/"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"url"}}})
	if status.Code(err) != codes.InvalidArgument || fieldOf(err) != "webhook.url" {
		t.Errorf("UpdateWebhook to the metadata address: got %v (field %q), want INVALID_ARGUMENT on webhook.url", err, fieldOf(err))
	}
}

func TestAuthDoesNotFollowURLToAnotherOrigin(t *testing.T) {
	e := newEnv(t)
	_, ctx := e.admin("Acme")
	req := validCreate()
	req.Url = "https://hooks.example.com/a"
	req.Auth = &webhooksv1.Auth{Kind: &webhooksv1.Auth_Bearer{Bearer: &webhooksv1.BearerToken{Token: "tok-never-elsewhere-1234"}}}
	id := e.createWebhook(ctx, req).GetWebhook().GetId()
	update := func(u string, paths []string, auth *webhooksv1.Auth) error {
		_, err := e.webhooks.UpdateWebhook(ctx, &webhooksv1.UpdateWebhookRequest{
			Webhook: &webhooksv1.Webhook{Id: id, Url: u, Auth: auth}, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}})
		return err
	}
	sameKindEmpty := &webhooksv1.Auth{Kind: &webhooksv1.Auth_Bearer{Bearer: &webhooksv1.BearerToken{}}}
	for _, tt := range []struct {
		name  string
		url   string
		paths []string
		auth  *webhooksv1.Auth
	}{
		{"other host", "https://attacker.example.net/a", []string{"url"}, nil},
		{"other port", "https://hooks.example.com:8443/a", []string{"url"}, nil},
		{"other scheme", "http://hooks.example.com/a", []string{"url"}, nil},
		{"other host, auth kept by an empty value", "https://attacker.example.net/a", []string{"url", "auth"}, sameKindEmpty},
	} {
		err := update(tt.url, tt.paths, tt.auth)
		if status.Code(err) != codes.InvalidArgument || fieldOf(err) != "webhook.auth" {
			t.Errorf("%s: got %v (field %q), want INVALID_ARGUMENT on webhook.auth", tt.name, err, fieldOf(err))
		}
	}
	got, err := e.webhooks.GetWebhook(ctx, &webhooksv1.GetWebhookRequest{Id: id})
	if err != nil || got.GetWebhook().GetUrl() != "https://hooks.example.com/a" || got.GetWebhook().GetAuth().GetBearer().GetTokenHint() != "1234" {
		t.Fatalf("after refused updates: got %v, %v; want the webhook unchanged", got.GetWebhook(), err)
	}
	// Same origin: the stored auth stays. Default ports are the same origin.
	for _, u := range []string{"https://hooks.example.com/b", "https://HOOKS.example.com:443/c"} {
		if err := update(u, []string{"url"}, nil); err != nil {
			t.Errorf("same-origin change to %s: %v", u, err)
		}
	}
	// Another origin with the auth supplied again, or with none.
	if err := update("https://new.example.org/a", []string{"url", "auth"},
		&webhooksv1.Auth{Kind: &webhooksv1.Auth_Bearer{Bearer: &webhooksv1.BearerToken{Token: "new-token-5678"}}}); err != nil {
		t.Errorf("new origin with new auth: %v", err)
	}
	if err := update("https://third.example.org/a", []string{"url", "auth"}, nil); err != nil {
		t.Errorf("new origin with auth removed: %v", err)
	}
}

func TestWebhookLimitPerAccount(t *testing.T) {
	e := newEnv(t, "-max-webhooks-per-account", "3")
	_, ctx := e.admin("Acme")
	_, other := e.admin("Other")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, errs[i] = e.webhooks.CreateWebhook(ctx, validCreate()) })
	}
	wg.Wait()
	created := 0
	for _, err := range errs {
		switch status.Code(err) {
		case codes.OK:
			created++
		case codes.ResourceExhausted:
		default:
			t.Errorf("concurrent create: got %v, want OK or RESOURCE_EXHAUSTED", err)
		}
	}
	if created != 3 {
		t.Errorf("concurrent creates: %d succeeded, want exactly the limit 3", created)
	}
	list, err := e.webhooks.ListWebhooks(ctx, &webhooksv1.ListWebhooksRequest{})
	if err != nil || len(list.GetWebhooks()) != 3 {
		t.Errorf("ListWebhooks: %d webhooks (%v), want 3", len(list.GetWebhooks()), err)
	}
	if _, err := e.webhooks.CreateWebhook(other, validCreate()); err != nil {
		t.Errorf("another account's create: %v, want the limit counted per account", err)
	}
	_, err = e.webhooks.DeleteWebhook(ctx, &webhooksv1.DeleteWebhookRequest{Id: list.GetWebhooks()[0].GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.webhooks.CreateWebhook(ctx, validCreate()); err != nil {
		t.Errorf("create after a delete: %v, want room again", err)
	}
}

func TestRedeliverToDisabledWebhookFailsPrecondition(t *testing.T) {
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
	if _, err := e.webhooks.DisableWebhook(ctx, &webhooksv1.DisableWebhookRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	_, err := e.webhooks.RedeliverDelivery(ctx, &webhooksv1.RedeliverDeliveryRequest{DeliveryId: "del_x"})
	wantCode(t, err, codes.FailedPrecondition)
	_, err = e.webhooks.RedeliverFailed(ctx, &webhooksv1.RedeliverFailedRequest{WebhookId: id})
	wantCode(t, err, codes.FailedPrecondition)
	if _, err := e.webhooks.EnableWebhook(ctx, &webhooksv1.EnableWebhookRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.webhooks.RedeliverDelivery(ctx, &webhooksv1.RedeliverDeliveryRequest{DeliveryId: "del_x"}); err != nil {
		t.Errorf("redeliver after enabling: %v", err)
	}
}

func TestEnabledOmittedMeansEnabled(t *testing.T) {
	e := newEnv(t)
	_, ctx := e.admin("Acme")
	if got := e.createWebhook(ctx, validCreate()).GetWebhook().GetEnabled(); !got {
		t.Errorf("enabled omitted: got enabled=%v, want true", got)
	}
	req := validCreate()
	req.Enabled = proto.Bool(false)
	if got := e.createWebhook(ctx, req).GetWebhook().GetEnabled(); got {
		t.Errorf("enabled=false: got enabled=%v, want false", got)
	}
}

func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	e := newEnv(t)
	_, keys := e.account("Acme")
	for _, scheme := range []string{"bearer", "BEARER", "Bearer"} {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", scheme+" "+keys[webhooksv1.Role_ROLE_ADMIN])
		if _, err := e.webhooks.ListWebhooks(ctx, &webhooksv1.ListWebhooksRequest{}); err != nil {
			t.Errorf("authorization %q: %v, want the key accepted (RFC 7235: the scheme is case-insensitive)", scheme+" <key>", err)
		}
	}
}

func TestWebhookTimeout(t *testing.T) {
	e := newEnv(t)
	_, ctx := e.admin("Acme")
	for _, bad := range []int32{-1, 31, 3600} {
		req := validCreate()
		req.TimeoutSeconds = bad
		_, err := e.webhooks.CreateWebhook(ctx, req)
		if status.Code(err) != codes.InvalidArgument || fieldOf(err) != "timeout_seconds" {
			t.Errorf("timeout_seconds=%d: got %v (field %q), want INVALID_ARGUMENT on timeout_seconds", bad, err, fieldOf(err))
		}
	}
	req := validCreate()
	req.TimeoutSeconds = 5
	id := e.createWebhook(ctx, req).GetWebhook().GetId()
	wantTimeout := func(when string, seconds int32) {
		t.Helper()
		got, err := e.webhooks.GetWebhook(ctx, &webhooksv1.GetWebhookRequest{Id: id})
		if err != nil || got.GetWebhook().GetTimeoutSeconds() != seconds {
			t.Errorf("%s: GetWebhook timeout_seconds %d (%v), want %d", when, got.GetWebhook().GetTimeoutSeconds(), err, seconds)
		}
		list, err := e.webhooks.ListWebhooks(ctx, &webhooksv1.ListWebhooksRequest{})
		if err != nil || len(list.GetWebhooks()) != 1 || list.GetWebhooks()[0].GetTimeoutSeconds() != seconds {
			t.Errorf("%s: ListWebhooks %v (%v), want timeout_seconds %d", when, list.GetWebhooks(), err, seconds)
		}
		cfg, err := e.configs.GetWebhookConfig(e.service(), &webhooksv1.GetWebhookConfigRequest{Id: id})
		wantMS := int32(10000)
		if seconds > 0 {
			wantMS = seconds * 1000
		}
		if err != nil || cfg.GetConfig().GetTimeoutMs() != wantMS {
			t.Errorf("%s: dispatcher config timeout_ms %d (%v), want %d", when, cfg.GetConfig().GetTimeoutMs(), err, wantMS)
		}
	}
	wantTimeout("created with 5", 5)
	upd := func(seconds int32) error {
		_, err := e.webhooks.UpdateWebhook(ctx, &webhooksv1.UpdateWebhookRequest{
			Webhook:    &webhooksv1.Webhook{Id: id, TimeoutSeconds: seconds},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"timeout_seconds"}}})
		return err
	}
	if err := upd(30); err != nil {
		t.Fatalf("update timeout to 30: %v", err)
	}
	wantTimeout("updated to 30", 30)
	if err := upd(31); status.Code(err) != codes.InvalidArgument || fieldOf(err) != "webhook.timeout_seconds" {
		t.Errorf("update timeout to 31: got %v (field %q), want INVALID_ARGUMENT on webhook.timeout_seconds", err, fieldOf(err))
	}
	if err := upd(0); err != nil {
		t.Fatalf("update timeout to 0 (default): %v", err)
	}
	wantTimeout("reset to the default", 0)
}

// TestTestEventErrorsHideInfrastructure sends test events that fail and checks that the result
// names the failure in the customer's words, not our resolver or addresses.
func TestTestEventErrorsHideInfrastructure(t *testing.T) {
	e := newEnv(t)
	_, ctx := e.admin("Acme")
	req := validCreate()
	req.Url = "https://no-such-host.invalid/hook"
	id := e.createWebhook(ctx, req).GetWebhook().GetId()
	resp, err := e.webhooks.SendTestEvent(ctx, &webhooksv1.SendTestEventRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.GetAttempt().GetError(), "DNS lookup failed: no-such-host.invalid not found"; got != want {
		t.Errorf("test event error: got %q, want %q", got, want)
	}
	// A receiver that times out: the webhook's own timeout applies to test events too.
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	req = validCreate()
	req.Url, req.TimeoutSeconds = srv.URL, 1
	id = e.createWebhook(ctx, req).GetWebhook().GetId()
	resp, err = e.webhooks.SendTestEvent(ctx, &webhooksv1.SendTestEventRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetAttempt().GetError(); got != "timed out after 1s waiting for the endpoint" {
		t.Errorf("test event error: got %q, want the timeout in words", got)
	}
	if strings.Contains(resp.GetAttempt().GetError(), "127.0.0.1") {
		t.Errorf("test event error names an address: %q", resp.GetAttempt().GetError())
	}
}

// TestUndecodableRequestIsInvalidArgument sends a CreateWebhook whose url is not UTF-8.
func TestUndecodableRequestIsInvalidArgument(t *testing.T) {
	e := newEnv(t)
	_, ctx := e.admin("Acme")
	raw := []byte{0x0a, 0x02, 0xff, 0xfe} // field 1 (url), length 2, invalid UTF-8
	err := e.conn.Invoke(ctx, webhooksv1.WebhookService_CreateWebhook_FullMethodName, rawMessage(raw), &webhooksv1.CreateWebhookResponse{})
	wantCode(t, err, codes.InvalidArgument)
	list, err := e.webhooks.ListWebhooks(ctx, &webhooksv1.ListWebhooksRequest{})
	if err != nil || len(list.GetWebhooks()) != 0 {
		t.Errorf("after the undecodable request: %d webhooks (%v), want none", len(list.GetWebhooks()), err)
	}
}

// rawMessage is a message that marshals to b exactly (as unknown fields), for bytes a generated
// client would refuse to send.
func rawMessage(b []byte) *emptypb.Empty {
	m := &emptypb.Empty{}
	m.ProtoReflect().SetUnknown(b)
	return m
}
