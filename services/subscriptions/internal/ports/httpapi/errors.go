package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
)

// Error is the body of every error response (the OpenAPI document's "Error" schema).
type Error struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody describes what went wrong.
type ErrorBody struct {
	// Code is the HTTP status.
	Code int `json:"code"`
	// Status is the gRPC status code's name, e.g. INVALID_ARGUMENT.
	Status  string `json:"status"`
	Message string `json:"message"`
	// FieldViolations name the invalid request fields (INVALID_ARGUMENT only).
	FieldViolations []FieldViolation `json:"field_violations,omitempty"`
}

// FieldViolation names one invalid request field.
type FieldViolation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

// HTTPStatus maps a gRPC code to the HTTP status of the error response.
func HTTPStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return 499
	case codes.InvalidArgument, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.FailedPrecondition:
		return http.StatusPreconditionFailed
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// statusName is a gRPC code's canonical name ("INVALID_ARGUMENT").
func statusName(c codes.Code) string {
	if c == codes.Canceled {
		return "CANCELLED"
	}
	b := []byte(c.String())
	var out []byte
	for i, r := range b {
		if i > 0 && r >= 'A' && r <= 'Z' {
			out = append(out, '_')
		}
		out = append(out, bytes.ToUpper([]byte{r})...)
	}
	return string(out)
}

func writeError(w http.ResponseWriter, code int, status, message string, violations []FieldViolation) {
	body, err := json.Marshal(Error{Error: ErrorBody{Code: code, Status: status, Message: message, FieldViolations: violations}})
	if err != nil {
		code = http.StatusInternalServerError
		body = []byte(`{"error":{"code":500,"status":"INTERNAL","message":"internal error"}}`)
	}
	h := w.Header()
	h.Del("Content-Encoding")
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// rewriteError turns the transcoder's error response (a google.rpc.Status in JSON, or a plain
// text for errors of its own) into an Error.
func rewriteError(w http.ResponseWriter, httpCode int, body []byte, tooLarge bool) {
	if tooLarge {
		writeError(w, http.StatusRequestEntityTooLarge, "RESOURCE_EXHAUSTED", "request body is too large", nil)
		return
	}
	var st spb.Status
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, &st); err != nil || st.GetCode() == 0 {
		msg := http.StatusText(httpCode)
		if t := bytes.TrimSpace(body); len(t) > 0 && len(t) < 512 && err != nil {
			msg = string(t)
		}
		writeError(w, httpCode, statusName(codeOfHTTP(httpCode)), msg, nil)
		return
	}
	c := codes.Code(st.GetCode())
	if c == codes.Unknown {
		// Our handlers never answer UNKNOWN (unexpected errors are INTERNAL): it is the
		// transcoder failing to turn the request (path, query) into a call, the caller's fault.
		c = codes.InvalidArgument
	}
	var violations []FieldViolation
	for _, d := range st.GetDetails() {
		var br errdetails.BadRequest
		if d.MessageIs(&br) && d.UnmarshalTo(&br) == nil {
			for _, v := range br.GetFieldViolations() {
				violations = append(violations, FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		}
	}
	writeError(w, HTTPStatus(c), statusName(c), st.GetMessage(), violations)
}

// codeOfHTTP is the gRPC code closest to an HTTP status the transcoder answered by itself.
func codeOfHTTP(s int) codes.Code {
	switch s {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType:
		return codes.InvalidArgument
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return codes.Unimplemented
	case http.StatusRequestEntityTooLarge:
		return codes.ResourceExhausted
	}
	return codes.Unknown
}

// responseWriter passes successful responses through (with the call's success status) and holds
// back error responses to rewrite them.
type responseWriter struct {
	w       http.ResponseWriter
	success int
	body    *limitedBody

	code    int
	errBody bytes.Buffer
}

func (rw *responseWriter) Header() http.Header { return rw.w.Header() }

func (rw *responseWriter) WriteHeader(code int) {
	if rw.code != 0 {
		return
	}
	rw.code = code
	if code >= 400 {
		return
	}
	if code == http.StatusOK {
		code = rw.success
	}
	if code == http.StatusNoContent {
		h := rw.w.Header()
		h.Del("Content-Length")
		h.Del("Content-Type")
	}
	rw.w.WriteHeader(code)
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	if rw.code == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	switch {
	case rw.code >= 400:
		return rw.errBody.Write(p)
	case rw.code == http.StatusOK && rw.success == http.StatusNoContent:
		// A delete's empty message ("{}") has no place in a 204.
		return len(p), nil
	}
	return rw.w.Write(p)
}

// Flush implements http.Flusher for successful responses.
func (rw *responseWriter) Flush() {
	if rw.code != 0 && rw.code < 400 {
		if f, ok := rw.w.(http.Flusher); ok {
			f.Flush()
		}
	}
}

func (rw *responseWriter) finish() {
	if rw.code >= 400 {
		rewriteError(rw.w, rw.code, rw.errBody.Bytes(), rw.body.exceeded)
	}
}
