// Package httpapi serves the public HTTP/JSON API: WebhookService's google.api.http bindings
// transcoded at run time by vanguard into calls on the very gRPC server (interceptors and all)
// that serves gRPC clients, plus the OpenAPI 3 document at /v1/openapi.json. Around the
// transcoder it adds what the annotations cannot say: one JSON error shape with HTTP statuses
// from the gRPC codes, 201 and 204 for creates and deletes, a request body limit, and CORS for an
// allow-list of origins.
package httpapi

import (
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
)

// DefaultMaxBodyBytes bounds a request body when Config.MaxBodyBytes is zero.
const DefaultMaxBodyBytes = 64 << 10

// OpenAPIPath is where the OpenAPI document is served, without authentication.
const OpenAPIPath = "/v1/openapi.json"

//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the OpenAPI 3 document that `make generate` derived from the proto.
func OpenAPI() []byte { return slices.Clone(openAPIDocument) }

// Config holds the HTTP API's settings.
type Config struct {
	// MaxBodyBytes bounds a request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// AllowedOrigins may call the API from a browser (CORS); empty means none.
	AllowedOrigins []string
}

// New returns the HTTP API in front of grpcHandler, the gRPC server that implements
// WebhookService (a *grpc.Server: its ServeHTTP runs the same interceptors as gRPC clients get).
func New(grpcHandler http.Handler, cfg Config) (http.Handler, error) {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	svc := vanguard.NewService(webhooksv1.WebhookService_ServiceDesc.ServiceName, grpcHandler,
		vanguard.WithTargetProtocols(vanguard.ProtocolGRPC),
		vanguard.WithTargetCodecs(vanguard.CodecProto),
		vanguard.WithRESTUnmarshalOptions(vanguard.RESTUnmarshalOptions{DiscardUnknownQueryParams: false}),
	)
	transcoder, err := vanguard.NewTranscoder([]*vanguard.Service{svc},
		vanguard.WithCodec(func(res vanguard.TypeResolver) vanguard.Codec {
			// Field names as in the proto (and in webhook bodies); unknown fields are an error.
			return strictJSON{&vanguard.JSONCodec{
				MarshalOptions:   protojson.MarshalOptions{Resolver: res, UseProtoNames: true, EmitUnpopulated: true},
				UnmarshalOptions: protojson.UnmarshalOptions{Resolver: res},
			}}
		}),
		vanguard.WithUnknownHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path), nil)
		})),
	)
	if err != nil {
		return nil, fmt.Errorf("http api: transcoder: %w", err)
	}
	api := rest(transcoder, cfg.MaxBodyBytes)
	return cors(cfg.AllowedOrigins, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == OpenAPIPath && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(openAPIDocument)
		case strings.HasPrefix(r.URL.Path, "/v1/"):
			api.ServeHTTP(w, r)
		default:
			// Only REST: vanguard would also speak Connect and gRPC-Web on the service's own paths.
			writeError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path), nil)
		}
	})), nil
}

// strictJSON reports a request body it cannot decode (malformed, unknown field, wrong type) as
// INVALID_ARGUMENT; vanguard would pass the decoder's error on as UNKNOWN, a 500.
type strictJSON struct{ *vanguard.JSONCodec }

func (c strictJSON) Unmarshal(data []byte, msg proto.Message) error {
	if err := c.JSONCodec.Unmarshal(data, msg); err != nil {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("invalid JSON body: %w", err))
	}
	return nil
}

func (c strictJSON) UnmarshalField(data []byte, msg proto.Message, field protoreflect.FieldDescriptor) error {
	if err := c.JSONCodec.UnmarshalField(data, msg, field); err != nil {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("invalid JSON body: %w", err))
	}
	return nil
}

// rest wraps the transcoder: body limit, success statuses, error shape.
func rest(next http.Handler, maxBody int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBody {
			writeError(w, http.StatusRequestEntityTooLarge, "RESOURCE_EXHAUSTED",
				fmt.Sprintf("request body is larger than %d bytes", maxBody), nil)
			return
		}
		body := &limitedBody{r: http.MaxBytesReader(w, r.Body, maxBody), limit: maxBody}
		r.Body = body
		jsonUpdateMask(r.URL)
		rw := &responseWriter{w: w, success: successStatus(r.Method, r.URL.Path), body: body}
		next.ServeHTTP(rw, r)
		rw.finish()
	})
}

// jsonUpdateMask rewrites the update_mask query parameter's paths from the proto's field names
// (event_types, timeout_seconds: what the docs, the webhook body and gRPC callers use) to the JSON
// form a FieldMask takes in a URL (eventTypes, timeoutSeconds), which is all vanguard accepts: an
// integrator writing update_mask=event_types otherwise got a 400. Paths already in JSON form are
// left as they are.
func jsonUpdateMask(u *url.URL) {
	q := u.Query()
	masks, ok := q["update_mask"]
	if !ok {
		return
	}
	for i, m := range masks {
		paths := strings.Split(m, ",")
		for j, p := range paths {
			segs := strings.Split(strings.TrimSpace(p), ".")
			for k, seg := range segs {
				segs[k] = lowerCamel(seg)
			}
			paths[j] = strings.Join(segs, ".")
		}
		masks[i] = strings.Join(paths, ",")
	}
	u.RawQuery = q.Encode()
}

// lowerCamel turns a proto field name into its JSON name (send_trace_context → sendTraceContext).
func lowerCamel(name string) string {
	var b strings.Builder
	upper := false
	for _, r := range name {
		switch {
		case r == '_':
			upper = true
		case upper:
			b.WriteString(strings.ToUpper(string(r)))
			upper = false
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// successStatus is the status of a successful call: 201 for the creates, 204 for the deletes.
func successStatus(method, path string) int {
	parts := strings.Split(strings.TrimPrefix(path, "/v1/"), "/")
	collection := len(parts) == 1 && (parts[0] == "webhooks" || parts[0] == "api-keys")
	resource := len(parts) == 2 && (parts[0] == "webhooks" || parts[0] == "api-keys") && !strings.Contains(parts[1], ":")
	switch {
	case method == http.MethodPost && collection:
		return http.StatusCreated
	case method == http.MethodDelete && resource:
		return http.StatusNoContent
	}
	return http.StatusOK
}

// limitedBody remembers that the request body went over the limit, so the error the
// transcoder reports for the failed read can be answered as 413.
type limitedBody struct {
	r        interface{ Read([]byte) (int, error) }
	limit    int64
	exceeded bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		b.exceeded = true
	}
	return n, err
}

func (b *limitedBody) Close() error { return nil }

// cors answers preflight requests and marks responses for origins in the allow-list; other
// origins get no CORS headers, so browsers keep them out.
func cors(allowed []string, next http.Handler) http.Handler {
	if len(allowed) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !slices.Contains(allowed, origin) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
