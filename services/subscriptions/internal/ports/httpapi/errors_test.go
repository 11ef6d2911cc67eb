package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

func TestHTTPStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code codes.Code
		want int
	}{
		{codes.InvalidArgument, 400}, {codes.Unauthenticated, 401}, {codes.PermissionDenied, 403},
		{codes.NotFound, 404}, {codes.AlreadyExists, 409}, {codes.Aborted, 409}, {codes.FailedPrecondition, 412},
		{codes.ResourceExhausted, 429}, {codes.Unavailable, 503}, {codes.DeadlineExceeded, 504},
		{codes.Unimplemented, 501}, {codes.Internal, 500}, {codes.DataLoss, 500},
	}
	for _, tt := range tests {
		if got := HTTPStatus(tt.code); got != tt.want {
			t.Errorf("HTTPStatus(%s): got %d, want %d", tt.code, got, tt.want)
		}
	}
}

func TestStatusName(t *testing.T) {
	t.Parallel()
	for code, want := range map[codes.Code]string{
		codes.InvalidArgument: "INVALID_ARGUMENT", codes.NotFound: "NOT_FOUND", codes.Canceled: "CANCELLED",
		codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Unauthenticated: "UNAUTHENTICATED",
	} {
		if got := statusName(code); got != want {
			t.Errorf("statusName(%s): got %q, want %q", code, got, want)
		}
	}
}

func TestRewriteError(t *testing.T) {
	t.Parallel()
	withViolation, err := status.New(codes.InvalidArgument, "invalid url: bad").WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "url", Description: "bad"}}})
	if err != nil {
		t.Fatal(err)
	}
	statusJSON := func(st *status.Status) []byte {
		b, err := protojson.Marshal(st.Proto())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name     string
		httpCode int
		body     []byte
		tooLarge bool
		want     Error
	}{
		{"violations", 400, statusJSON(withViolation), false, Error{ErrorBody{Code: 400, Status: "INVALID_ARGUMENT",
			Message: "invalid url: bad", FieldViolations: []FieldViolation{{Field: "url", Description: "bad"}}}}},
		{"precondition is 412", 400, statusJSON(status.New(codes.FailedPrecondition, "disabled")), false,
			Error{ErrorBody{Code: 412, Status: "FAILED_PRECONDITION", Message: "disabled"}}},
		{"transcoder's unknown is the caller's", 500, statusJSON(status.New(codes.Unknown, "bad query")), false,
			Error{ErrorBody{Code: 400, Status: "INVALID_ARGUMENT", Message: "bad query"}}},
		{"plain text", 405, []byte("method not allowed\n"), false,
			Error{ErrorBody{Code: 405, Status: "UNIMPLEMENTED", Message: "method not allowed"}}},
		{"over the limit", 400, statusJSON(status.New(codes.InvalidArgument, "read failed")), true,
			Error{ErrorBody{Code: 413, Status: "RESOURCE_EXHAUSTED", Message: "request body is too large"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			rewriteError(rec, tt.httpCode, tt.body, tt.tooLarge)
			var got Error
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", rec.Body.String(), err)
			}
			if rec.Code != tt.want.Error.Code || rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("status %d content type %q, want %d application/json", rec.Code, rec.Header().Get("Content-Type"), tt.want.Error.Code)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSuccessStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, "/v1/webhooks", 201},
		{http.MethodPost, "/v1/api-keys", 201},
		{http.MethodDelete, "/v1/webhooks/wh_1", 204},
		{http.MethodDelete, "/v1/api-keys/key_1", 204},
		{http.MethodPost, "/v1/webhooks/wh_1:test", 200},
		{http.MethodGet, "/v1/webhooks", 200},
		{http.MethodPatch, "/v1/webhooks/wh_1", 200},
	}
	for _, tt := range tests {
		if got := successStatus(tt.method, tt.path); got != tt.want {
			t.Errorf("successStatus(%s %s): got %d, want %d", tt.method, tt.path, got, tt.want)
		}
	}
}

func TestJSONUpdateMask(t *testing.T) {
	t.Parallel()
	tests := []struct{ query, want string }{
		{"update_mask=event_types", "eventTypes"},
		{"update_mask=timeout_seconds,send_trace_context,url", "timeoutSeconds,sendTraceContext,url"},
		{"update_mask=sendTraceContext", "sendTraceContext"},
		{"update_mask=auth.bearer.token", "auth.bearer.token"},
		{"update_mask=description%2C%20event_types", "description,eventTypes"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			u := &url.URL{Path: "/v1/webhooks/wh_1", RawQuery: tt.query}
			jsonUpdateMask(u)
			if got := u.Query().Get("update_mask"); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	u := &url.URL{Path: "/v1/webhooks", RawQuery: "page_size=5"}
	jsonUpdateMask(u)
	if u.RawQuery != "page_size=5" {
		t.Errorf("a query without update_mask changed: got %q", u.RawQuery)
	}
}
