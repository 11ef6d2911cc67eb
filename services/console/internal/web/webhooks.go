package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
)

// fail turns an API error into a page a person understands. It reports false when err is nil.
func (s *Server) fail(q *request, err error) bool {
	if err == nil {
		return false
	}
	switch status.Code(err) {
	case codes.PermissionDenied:
		q.page(s, http.StatusForbidden, "noaccess", "Webhook integrations", nil)
	case codes.Unauthenticated:
		s.render(q.w, http.StatusUnauthorized, "signedout", nil, pageData{Title: "Signed out"})
	case codes.NotFound:
		q.page(s, http.StatusNotFound, "message", "Not found", "This webhook does not exist or was deleted.")
	case codes.FailedPrecondition, codes.ResourceExhausted, codes.InvalidArgument:
		q.page(s, http.StatusConflict, "message", "Not possible", status.Convert(err).Message())
	default:
		s.cfg.Logger.Error("webhook api call", "path", q.r.URL.Path, "account_id", q.sess.AccountID, "error", err)
		q.page(s, http.StatusServiceUnavailable, "message", "Try again",
			"The webhook settings are not reachable right now. Please try again in a minute.")
	}
	return true
}

type listView struct {
	CSRF  string
	Items []listItem
}

type listItem struct {
	Webhook *webhooksv1.Webhook
	Last    *webhooksv1.DeliveryAttempt
	// Streak counts the latest failed attempts in a row (of the last 20), test events aside.
	Streak int
}

func (s *Server) list(q *request) {
	resp, err := s.cfg.Webhooks.ListWebhooks(q.ctx, &webhooksv1.ListWebhooksRequest{PageSize: 100})
	if s.fail(q, err) {
		return
	}
	v := listView{CSRF: q.sess.CSRF}
	for _, wh := range resp.GetWebhooks() {
		it := listItem{Webhook: wh}
		att, err := s.cfg.Webhooks.ListDeliveryAttempts(q.ctx, &webhooksv1.ListDeliveryAttemptsRequest{WebhookId: wh.GetId(), PageSize: 20})
		if err == nil && len(att.GetAttempts()) > 0 {
			it.Last = att.GetAttempts()[0]
			for _, a := range att.GetAttempts() {
				if a.GetTest() {
					continue
				}
				if a.GetOutcome() == webhooksv1.Outcome_OUTCOME_SUCCEEDED {
					break
				}
				it.Streak++
			}
		}
		v.Items = append(v.Items, it)
	}
	q.page(s, http.StatusOK, "list", "Webhook integrations", v)
}

// formView is the add/edit form: what was entered, and the API's complaints per field.
type formView struct {
	CSRF       string
	ID         string
	URL        string
	Selected   map[string]bool
	Enabled    bool
	AuthKind   string // none, header, bearer
	HeaderName string
	HeaderHint string
	BearerHint string
	Timeout    int32
	SecretHint string
	Disabled   string
	Catalog    []*webhooksv1.EventType
	Errors     map[string]string
	Error      string
	// Test is the result of Save & Test.
	Test *webhooksv1.DeliveryAttempt
	// Secret is a signing secret shown once, right after it was created or rotated.
	Secret string
}

func (s *Server) catalog(q *request, v *formView) bool {
	cat, err := s.cfg.Webhooks.ListEventTypes(q.ctx, &webhooksv1.ListEventTypesRequest{})
	if s.fail(q, err) {
		return false
	}
	v.Catalog = cat.GetEventTypes()
	return true
}

func (s *Server) newForm(q *request) {
	v := formView{CSRF: q.sess.CSRF, Enabled: true, AuthKind: "none", Selected: map[string]bool{}}
	if s.catalog(q, &v) {
		q.page(s, http.StatusOK, "form", "Add webhook", v)
	}
}

func viewOf(wh *webhooksv1.Webhook) formView {
	v := formView{ID: wh.GetId(), URL: wh.GetUrl(), Enabled: wh.GetEnabled(), AuthKind: "none",
		Timeout: wh.GetTimeoutSeconds(), SecretHint: wh.GetSecretHint(), Disabled: wh.GetDisabledReason(),
		Selected: map[string]bool{}}
	for _, t := range wh.GetEventTypes() {
		v.Selected[t] = true
	}
	switch a := wh.GetAuth().GetKind().(type) {
	case *webhooksv1.Auth_ApiKeyHeader:
		v.AuthKind, v.HeaderName, v.HeaderHint = "header", a.ApiKeyHeader.GetName(), a.ApiKeyHeader.GetValueHint()
	case *webhooksv1.Auth_Bearer:
		v.AuthKind, v.BearerHint = "bearer", a.Bearer.GetTokenHint()
	}
	return v
}

func (s *Server) editForm(q *request) {
	resp, err := s.cfg.Webhooks.GetWebhook(q.ctx, &webhooksv1.GetWebhookRequest{Id: q.r.PathValue("id")})
	if s.fail(q, err) {
		return
	}
	v := viewOf(resp.GetWebhook())
	v.CSRF = q.sess.CSRF
	if s.catalog(q, &v) {
		q.page(s, http.StatusOK, "form", "Edit webhook", v)
	}
}

// parseForm reads the add/edit form; auth values are write-only, so an empty value with an
// unchanged kind keeps the stored one (the API's rule within one origin).
func parseForm(r *http.Request) (formView, *webhooksv1.Webhook) {
	_ = r.ParseForm()
	v := formView{URL: strings.TrimSpace(r.PostFormValue("url")), Enabled: r.PostFormValue("enabled") == "on",
		AuthKind: r.PostFormValue("auth"), HeaderName: strings.TrimSpace(r.PostFormValue("header_name")),
		Selected: map[string]bool{}, Errors: map[string]string{}}
	wh := &webhooksv1.Webhook{Url: v.URL, Enabled: v.Enabled}
	for _, t := range r.PostForm["event_types"] {
		v.Selected[t] = true
		wh.EventTypes = append(wh.EventTypes, t)
	}
	if t := strings.TrimSpace(r.PostFormValue("timeout")); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			v.Errors["timeout_seconds"] = "Enter a whole number of seconds between 1 and 30, or leave it empty for 10."
		}
		v.Timeout, wh.TimeoutSeconds = int32(n), int32(n)
	}
	switch v.AuthKind {
	case "header":
		wh.Auth = &webhooksv1.Auth{Kind: &webhooksv1.Auth_ApiKeyHeader{ApiKeyHeader: &webhooksv1.ApiKeyHeader{
			Name: v.HeaderName, Value: r.PostFormValue("header_value")}}}
	case "bearer":
		wh.Auth = &webhooksv1.Auth{Kind: &webhooksv1.Auth_Bearer{Bearer: &webhooksv1.BearerToken{Token: r.PostFormValue("bearer_token")}}}
	default:
		v.AuthKind = "none"
	}
	if len(wh.EventTypes) == 0 {
		v.Errors["event_types"] = "Choose at least one event."
	}
	return v, wh
}

// fieldErrors copies the API's INVALID_ARGUMENT field violations onto the form; it reports
// false for other errors.
func fieldErrors(err error, v *formView) bool {
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		return false
	}
	for _, d := range st.Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok {
			continue
		}
		for _, fv := range br.GetFieldViolations() {
			f := strings.TrimPrefix(fv.GetField(), "webhook.")
			f, _, _ = strings.Cut(f, ".")
			v.Errors[f] = inWords(f, fv.GetDescription())
		}
	}
	if len(v.Errors) == 0 {
		v.Error = sentence(st.Message())
	}
	return true
}

// inWords rewords the API's field violations that speak to developers (field masks) for the
// person filling in the form.
func inWords(field, desc string) string {
	if field == "auth" && strings.Contains(desc, "another origin") {
		return "The URL now points to a different site, so the saved credential is not sent there. " +
			"Enter the token or header value again, or choose None."
	}
	return sentence(desc)
}

func sentence(s string) string {
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

func (s *Server) formError(q *request, v formView, title string) {
	v.CSRF = q.sess.CSRF
	if v.ID != "" {
		// Keep what only the stored webhook knows: the hints of write-only values.
		if cur, err := s.cfg.Webhooks.GetWebhook(q.ctx, &webhooksv1.GetWebhookRequest{Id: v.ID}); err == nil {
			stored := viewOf(cur.GetWebhook())
			v.SecretHint, v.Disabled = stored.SecretHint, stored.Disabled
			if stored.AuthKind == v.AuthKind {
				v.HeaderHint, v.BearerHint = stored.HeaderHint, stored.BearerHint
			}
		}
	}
	if s.catalog(q, &v) {
		q.page(s, http.StatusUnprocessableEntity, "form", title, v)
	}
}

func (s *Server) create(q *request) {
	v, wh := parseForm(q.r)
	if len(v.Errors) > 0 {
		s.formError(q, v, "Add webhook")
		return
	}
	enabled := wh.GetEnabled()
	resp, err := s.cfg.Webhooks.CreateWebhook(q.ctx, &webhooksv1.CreateWebhookRequest{Url: wh.Url,
		EventTypes: wh.EventTypes, Enabled: &enabled, Auth: wh.Auth, TimeoutSeconds: wh.TimeoutSeconds})
	if err != nil && fieldErrors(err, &v) {
		s.formError(q, v, "Add webhook")
		return
	}
	if s.fail(q, err) {
		return
	}
	out := viewOf(resp.GetWebhook())
	out.Secret = resp.GetSigningSecret()
	s.saved(q, out, "Webhook added.")
}

func (s *Server) update(q *request) {
	v, wh := parseForm(q.r)
	v.ID = q.r.PathValue("id")
	if len(v.Errors) > 0 {
		s.formError(q, v, "Edit webhook")
		return
	}
	wh.Id = v.ID
	if wh.Auth == nil {
		wh.Auth = &webhooksv1.Auth{}
	}
	resp, err := s.cfg.Webhooks.UpdateWebhook(q.ctx, &webhooksv1.UpdateWebhookRequest{Webhook: wh,
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"url", "event_types", "enabled", "auth", "timeout_seconds"}}})
	if err != nil && fieldErrors(err, &v) {
		s.formError(q, v, "Edit webhook")
		return
	}
	if s.fail(q, err) {
		return
	}
	s.saved(q, viewOf(resp.GetWebhook()), "Changes saved.")
}

// saved shows the saved webhook's page, with the result of a test event for Save & Test.
func (s *Server) saved(q *request, v formView, flash string) {
	if q.r.PostFormValue("action") != "save_test" {
		if v.Secret == "" {
			q.redirect(s, "/webhooks/"+v.ID, flash)
			return
		}
	} else {
		test, err := s.cfg.Webhooks.SendTestEvent(q.ctx, &webhooksv1.SendTestEventRequest{Id: v.ID})
		if err != nil {
			v.Error = "Saved, but the test event could not be sent: " + sentence(status.Convert(err).Message())
		}
		v.Test = test.GetAttempt()
	}
	// The page is rendered in the POST's answer: a new signing secret is shown exactly once and
	// never stored by the console.
	s.cfg.Sessions.SetFlash(q.sid, flash)
	v.CSRF = q.sess.CSRF
	if s.catalog(q, &v) {
		q.page(s, http.StatusOK, "form", "Edit webhook", v)
	}
}

func (s *Server) test(q *request) {
	resp, err := s.cfg.Webhooks.GetWebhook(q.ctx, &webhooksv1.GetWebhookRequest{Id: q.r.PathValue("id")})
	if s.fail(q, err) {
		return
	}
	v := viewOf(resp.GetWebhook())
	test, err := s.cfg.Webhooks.SendTestEvent(q.ctx, &webhooksv1.SendTestEventRequest{Id: v.ID})
	if err != nil {
		v.Error = "The test event could not be sent: " + sentence(status.Convert(err).Message())
	}
	v.Test = test.GetAttempt()
	v.CSRF = q.sess.CSRF
	if s.catalog(q, &v) {
		q.page(s, http.StatusOK, "form", "Edit webhook", v)
	}
}

func (s *Server) setEnabled(enabled bool) handlerFunc {
	return func(q *request) {
		id := q.r.PathValue("id")
		var err error
		msg := "Webhook enabled."
		if enabled {
			_, err = s.cfg.Webhooks.EnableWebhook(q.ctx, &webhooksv1.EnableWebhookRequest{Id: id})
		} else {
			_, err = s.cfg.Webhooks.DisableWebhook(q.ctx, &webhooksv1.DisableWebhookRequest{Id: id})
			msg = "Webhook disabled. No events are sent to it until you enable it again."
		}
		if s.fail(q, err) {
			return
		}
		q.redirect(s, back(q.r, "/webhooks"), msg)
	}
}

// back returns the form's "next" field when it is a path of the console, else def.
func back(r *http.Request, def string) string {
	n := r.PostFormValue("next")
	if strings.HasPrefix(n, "/") && !strings.HasPrefix(n, "//") && !strings.Contains(n, "\\") {
		return n
	}
	return def
}

func (s *Server) confirmDelete(q *request) {
	resp, err := s.cfg.Webhooks.GetWebhook(q.ctx, &webhooksv1.GetWebhookRequest{Id: q.r.PathValue("id")})
	if s.fail(q, err) {
		return
	}
	q.page(s, http.StatusOK, "delete", "Delete webhook", struct {
		CSRF    string
		Webhook *webhooksv1.Webhook
	}{q.sess.CSRF, resp.GetWebhook()})
}

func (s *Server) delete(q *request) {
	_, err := s.cfg.Webhooks.DeleteWebhook(q.ctx, &webhooksv1.DeleteWebhookRequest{Id: q.r.PathValue("id")})
	if s.fail(q, err) {
		return
	}
	q.redirect(s, "/webhooks", "Webhook deleted.")
}

func (s *Server) rotate(q *request) {
	resp, err := s.cfg.Webhooks.RotateSigningSecret(q.ctx, &webhooksv1.RotateSigningSecretRequest{Id: q.r.PathValue("id")})
	if s.fail(q, err) {
		return
	}
	v := viewOf(resp.GetWebhook())
	v.Secret = resp.GetSigningSecret()
	s.cfg.Sessions.SetFlash(q.sid, "Signing secret rotated. The previous secret keeps signing for 24 hours.")
	v.CSRF = q.sess.CSRF
	if s.catalog(q, &v) {
		q.page(s, http.StatusOK, "form", "Edit webhook", v)
	}
}

type deliveriesView struct {
	CSRF string
	// Webhook is nil for the account-wide log.
	Webhook   *webhooksv1.Webhook
	Attempts  []*webhooksv1.DeliveryAttempt
	EventType string
	Outcome   string
	Window    string
	Catalog   []*webhooksv1.EventType
	Windows   []window
}

type window struct {
	Value, Label string
	Span         time.Duration
}

// windows are the time filters of the delivery log, and the windows "redeliver failed" and
// "recover" act on.
var windows = []window{
	{"1h", "Last hour", time.Hour},
	{"24h", "Last 24 hours", 24 * time.Hour},
	{"7d", "Last 7 days", 7 * 24 * time.Hour},
	{"30d", "Last 30 days", 30 * 24 * time.Hour},
}

// windowStart returns the start of a named window, or nil for all time.
func (s *Server) windowStart(name string) *timestamppb.Timestamp {
	for _, w := range windows {
		if w.Value == name {
			return timestamppb.New(s.cfg.Now().Add(-w.Span))
		}
	}
	return nil
}

var outcomes = map[string]webhooksv1.Outcome{
	"succeeded": webhooksv1.Outcome_OUTCOME_SUCCEEDED, "retrying": webhooksv1.Outcome_OUTCOME_RETRYING,
	"failed": webhooksv1.Outcome_OUTCOME_DEAD_LETTERED,
}

// deliveries is the delivery log of one webhook ({id} in the path) or of the whole account.
func (s *Server) deliveries(q *request) {
	id := q.r.PathValue("id")
	query := q.r.URL.Query()
	v := deliveriesView{CSRF: q.sess.CSRF, EventType: query.Get("event_type"), Outcome: query.Get("outcome"),
		Window: query.Get("window"), Windows: windows}
	if id != "" {
		wh, err := s.cfg.Webhooks.GetWebhook(q.ctx, &webhooksv1.GetWebhookRequest{Id: id})
		if s.fail(q, err) {
			return
		}
		v.Webhook = wh.GetWebhook()
	}
	resp, err := s.cfg.Webhooks.ListDeliveryAttempts(q.ctx, &webhooksv1.ListDeliveryAttemptsRequest{WebhookId: id,
		PageSize: 50, EventType: v.EventType, Outcome: outcomes[v.Outcome], StartTime: s.windowStart(v.Window)})
	if s.fail(q, err) {
		return
	}
	v.Attempts = resp.GetAttempts()
	cat, err := s.cfg.Webhooks.ListEventTypes(q.ctx, &webhooksv1.ListEventTypesRequest{})
	if s.fail(q, err) {
		return
	}
	v.Catalog = cat.GetEventTypes()
	q.page(s, http.StatusOK, "deliveries", "Delivery log", v)
}

// redeliverFailed sends every failed delivery of the chosen window again.
func (s *Server) redeliverFailed(q *request) {
	id := q.r.PathValue("id")
	w := q.r.PostFormValue("window")
	start := s.windowStart(w)
	if start == nil {
		q.page(s, http.StatusBadRequest, "message", "Choose a time window", "Choose a time window first, then redeliver what failed in it.")
		return
	}
	resp, err := s.cfg.Webhooks.RedeliverFailed(q.ctx, &webhooksv1.RedeliverFailedRequest{WebhookId: id,
		StartTime: start, EndTime: timestamppb.New(s.cfg.Now())})
	if s.fail(q, err) {
		return
	}
	q.redirect(s, "/webhooks/"+id+"/deliveries?window="+url.QueryEscape(w),
		fmt.Sprintf("%d failed deliveries queued again.", resp.GetRedelivered()))
}

// recoverEvents replays the account's events since the start of the window to this webhook:
// for an endpoint that was down or subscribed late.
func (s *Server) recoverEvents(q *request) {
	id := q.r.PathValue("id")
	w := q.r.PostFormValue("window")
	start := s.windowStart(w)
	if start == nil {
		q.page(s, http.StatusBadRequest, "message", "Choose a time window", "Choose a time window first, then recover the events since its start.")
		return
	}
	resp, err := s.cfg.Webhooks.RecoverEvents(q.ctx, &webhooksv1.RecoverEventsRequest{WebhookId: id, StartTime: start})
	if s.fail(q, err) {
		return
	}
	q.redirect(s, "/webhooks/"+id+"/deliveries?window="+url.QueryEscape(w),
		fmt.Sprintf("Recovery queued %d deliveries from %d events.", resp.GetDeliveriesQueued(), resp.GetEventsScanned()))
}

func (s *Server) redeliver(q *request) {
	_, err := s.cfg.Webhooks.RedeliverDelivery(q.ctx, &webhooksv1.RedeliverDeliveryRequest{DeliveryId: q.r.PathValue("delivery")})
	if s.fail(q, err) {
		return
	}
	q.redirect(s, "/webhooks/"+q.r.PathValue("id")+"/deliveries", "Redelivery queued. It appears in the log as a new attempt.")
}
