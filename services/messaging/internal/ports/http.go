package ports

import (
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/customertext/webhooks/libs/server"
	"github.com/customertext/webhooks/libs/telemetry"
	"github.com/customertext/webhooks/services/messaging/internal/app"
	"github.com/customertext/webhooks/services/messaging/internal/carrier"
	"github.com/customertext/webhooks/services/messaging/internal/domain"
)

// InboundPath is where carriers POST inbound SMS.
const InboundPath = "/sms/inbound"

// maxFormBytes bounds an inbound request body: a 1600-character body is at most ~20 KB encoded.
const maxFormBytes = 64 << 10

// emptyTwiML acknowledges a message without replying through the carrier's response: replies
// go through the SMS provider.
const emptyTwiML = `<Response></Response>`

// NewInboundHandler serves POST /sms/inbound in the Twilio form. publicBaseURL is the scheme
// and host the carrier calls (the signature covers the full URL).
func NewInboundHandler(svc *app.Service, publicBaseURL string, tracing *telemetry.Tracing, logger *slog.Logger) http.Handler {
	base := strings.TrimRight(publicBaseURL, "/")
	tracer := tracing.Provider.Tracer("github.com/customertext/webhooks/services/messaging")
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+InboundPath, func(w http.ResponseWriter, r *http.Request) {
		// The span (joined to a carrier's traceparent, if any) reaches the events' headers.
		ctx, span := tracer.Start(tracing.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header)),
			"POST "+InboundPath, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		r = r.WithContext(ctx)
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/x-www-form-urlencoded" {
			http.Error(w, "Content-Type must be application/x-www-form-urlencoded", http.StatusUnsupportedMediaType)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "invalid form body", http.StatusBadRequest)
			return
		}
		form := r.PostForm
		fullURL := base + r.URL.RequestURI()
		sig := r.Header.Get(carrier.SignatureHeader)
		res, err := svc.HandleInbound(r.Context(), app.Inbound{
			From: form.Get("From"), To: form.Get("To"), Body: form.Get("Body"), MessageSid: form.Get("MessageSid"),
		}, func(token string) bool { return carrier.Valid(token, fullURL, form, sig) })
		switch {
		case errors.Is(err, app.ErrBadSignature):
			http.Error(w, "invalid "+carrier.SignatureHeader, http.StatusForbidden)
			return
		case errors.Is(err, app.ErrUnknownNumber):
			http.Error(w, "the To number is not registered", http.StatusNotFound)
			return
		case errors.Is(err, domain.ErrInvalid):
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		case server.Unavailable(err):
			logger.WarnContext(r.Context(), "inbound sms waits for a dependency; the carrier will retry", "error", err)
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		case err != nil:
			logger.ErrorContext(r.Context(), "inbound sms failed; the carrier will retry", "error", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		logger.DebugContext(r.Context(), "inbound sms", "kind", res.Kind, "duplicate", res.Duplicate, "message_id", res.MessageID)
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		_, _ = w.Write([]byte(emptyTwiML))
	})
	return mux
}
