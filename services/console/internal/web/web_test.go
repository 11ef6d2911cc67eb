package web

import (
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
)

func TestBack(t *testing.T) {
	tests := []struct {
		next, want string
	}{
		{"/webhooks/wh_1", "/webhooks/wh_1"},
		{"", "/webhooks"},
		{"https://evil.example/", "/webhooks"},
		{"//evil.example/", "/webhooks"},
		{"/\\evil.example", "/webhooks"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("POST", "/x", strings.NewReader(url.Values{"next": {tt.next}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if got := back(r, "/webhooks"); got != tt.want {
			t.Errorf("back(%q): got %q, want %q", tt.next, got, tt.want)
		}
	}
}

func TestFieldErrors(t *testing.T) {
	st, err := status.New(codes.InvalidArgument, "bad").WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
		{Field: "webhook.url", Description: "must use https"},
		{Field: "auth.bearer.token", Description: "token is required"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	v := formView{Errors: map[string]string{}}
	if !fieldErrors(st.Err(), &v) {
		t.Fatal("fieldErrors: got false for INVALID_ARGUMENT")
	}
	want := map[string]string{"url": "Must use https.", "auth": "Token is required."}
	if d := cmp.Diff(want, v.Errors); d != "" {
		t.Errorf("errors (-want +got):\n%s", d)
	}
	v = formView{Errors: map[string]string{}}
	if fieldErrors(status.Error(codes.Unavailable, "down"), &v) {
		t.Error("fieldErrors: got true for UNAVAILABLE")
	}
	v = formView{Errors: map[string]string{}}
	if !fieldErrors(status.Error(codes.InvalidArgument, "no details"), &v) || v.Error != "No details." {
		t.Errorf("INVALID_ARGUMENT without details: got form error %q", v.Error)
	}
}

func TestTemplatesParse(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"list", "form", "delete", "deliveries", "help", "noaccess", "message", "refused", "signedout", "welcome"} {
		if _, ok := s.pages[p]; !ok {
			t.Errorf("page %s not parsed", p)
		}
	}
}

func TestRenderPages(t *testing.T) {
	s, err := New(Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	now := timestamppb.Now()
	wh := &webhooksv1.Webhook{Id: "wh_1", Url: "https://example.com/hook", EventTypes: []string{"new_contact"}}
	att := &webhooksv1.DeliveryAttempt{WebhookId: "wh_1", DeliveryId: "del_1", EventType: "new_contact",
		Outcome: webhooksv1.Outcome_OUTCOME_RETRYING, AttemptTime: now, NextRetryTime: now, Url: wh.Url}
	tests := []struct {
		page string
		data any
		want []string
	}{
		{"list", listView{Items: []listItem{{Webhook: wh, Last: att, Streak: 3}}}, []string{"3 failures in a row", "Failed, retrying"}},
		{"deliveries", deliveriesView{Webhook: wh, Window: "1h", Windows: windows, Attempts: []*webhooksv1.DeliveryAttempt{att}},
			[]string{"/webhooks/wh_1/deliveries/del_1/redeliver", "/webhooks/wh_1/recover", "next try"}},
		{"deliveries", deliveriesView{Windows: windows, Attempts: []*webhooksv1.DeliveryAttempt{att}},
			[]string{`action="/deliveries"`, `href="/webhooks/wh_1/deliveries"`}},
		{"form", viewOf(wh), []string{`action="/webhooks/wh_1"`}},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		s.render(rec, 200, tt.page, nil, pageData{Data: tt.data})
		if rec.Code != 200 {
			t.Errorf("%s: got status %d: %s", tt.page, rec.Code, rec.Body)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(rec.Body.String(), w) {
				t.Errorf("%s: page lacks %q", tt.page, w)
			}
		}
	}
}
