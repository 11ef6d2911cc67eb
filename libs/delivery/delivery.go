// Package delivery sends one webhook request per the delivery contract: POST with the JSON body,
// Standard Webhooks signature headers, the configured auth header, User-Agent and, when the webhook
// chose it, the W3C trace context; a timeout; redirects not followed; destinations checked by the
// SSRF guard at dial time. It is the one piece of code that talks to customers' endpoints, used by
// the dispatcher for real events and by the subscription service for test events.
package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/customertext/webhooks/libs/signing"
	"github.com/customertext/webhooks/libs/ssrf"
)

// MaxResponseExcerpt is how much of a response body is kept for the delivery log.
const MaxResponseExcerpt = 4 << 10

// DefaultTimeout applies when a request names none.
const DefaultTimeout = 10 * time.Second

// Redacted replaces secret header values in recorded request headers.
const Redacted = "[REDACTED]"

// Config builds a Sender.
type Config struct {
	// Guard refuses forbidden destinations; required (use an allow-list for loopback tests).
	Guard *ssrf.Guard
	// UserAgent, e.g. "CustomerText-Webhooks/1.2.3".
	UserAgent string
	// MaxConnsPerHost caps connections to one host (0: no cap). Idle connections kept per host
	// follow it: Go's default of 2 idle per host halves throughput and leaves sockets in TIME_WAIT.
	MaxConnsPerHost int
	// Propagator injects the trace context into requests that ask for it (Request.SendTraceContext);
	// nil sends none.
	Propagator propagation.TextMapPropagator
}

// Sender posts webhooks. It is safe for concurrent use.
type Sender struct {
	client    *http.Client
	userAgent string
	prop      propagation.TextMapPropagator
}

// NewSender builds a Sender with its own connection pool.
func NewSender(cfg Config) (*Sender, error) {
	if cfg.Guard == nil {
		return nil, errors.New("new sender: an SSRF guard is required")
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "CustomerText-Webhooks/dev"
	}
	idle := cfg.MaxConnsPerHost
	if idle <= 0 {
		idle = 256
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: cfg.Guard.Control}
	tr := &http.Transport{
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4 * idle,
		MaxIdleConnsPerHost:   idle,
		MaxConnsPerHost:       cfg.MaxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 0,   // the per-request timeout covers it
		Proxy:                 nil, // never route customer traffic through an environment proxy
	}
	return &Sender{
		client: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		userAgent: cfg.UserAgent,
		prop:      cfg.Propagator,
	}, nil
}

// Close drops idle keep-alive connections; call it at shutdown.
func (s *Sender) Close() { s.client.CloseIdleConnections() }

// Request is one attempt.
type Request struct {
	URL string
	// Body is the exact JSON to send and sign.
	Body []byte
	// MsgID is the webhook-id header: the event id, stable across retries.
	MsgID string
	// Timestamp is the webhook-timestamp; zero means now.
	Timestamp time.Time
	// Secrets sign the request: the current one, plus the previous during a rotation overlap.
	Secrets []signing.Secret
	// AuthHeaderName and AuthHeaderValue, when set, are sent as configured
	// ("Authorization: Bearer <token>" for bearer auth).
	AuthHeaderName  string
	AuthHeaderValue string
	// Timeout of the whole attempt; DefaultTimeout when zero.
	Timeout time.Duration
	// SendTraceContext injects the trace context of ctx (traceparent, tracestate and whatever
	// else the Sender's propagator carries). Off by default: our trace ids are internal and the
	// endpoint belongs to a third party, so it gets them only when the webhook chose it.
	SendTraceContext bool
}

// Result is what happened.
type Result struct {
	// Status is the HTTP status, 0 when no response was received.
	Status int
	// Body is the start of the response body (at most MaxResponseExcerpt bytes).
	Body string
	// Duration from sending to the end of reading the excerpt.
	Duration time.Duration
	// Err is the transport error, nil when a response was received.
	Err error
	// RetryAfter is the parsed Retry-After header of a 429 or 503 (0 when absent).
	RetryAfter time.Duration
	// Headers are the request headers sent, with secret values redacted.
	Headers map[string]string
}

// Succeeded reports a 2xx response.
func (r Result) Succeeded() bool { return r.Err == nil && r.Status >= 200 && r.Status < 300 }

// Gone reports 410 Gone: the endpoint asks to be unsubscribed.
func (r Result) Gone() bool { return r.Err == nil && r.Status == http.StatusGone }

// ErrorText describes a failed attempt in words for the customer, as test results and the
// delivery log show it: never our resolver, addresses or error chains (those stay in Err, for
// our own logs).
func (r Result) ErrorText() string {
	switch {
	case r.Err != nil:
		var f *Failure
		if errors.As(r.Err, &f) {
			return f.Text
		}
		return "the request to the endpoint failed"
	case r.Succeeded():
		return ""
	case r.Status >= 300 && r.Status < 400:
		return fmt.Sprintf("HTTP %d: redirects are not followed", r.Status)
	default:
		return fmt.Sprintf("HTTP %d", r.Status)
	}
}

// Send performs one attempt. It never returns an error: failures are in the Result.
func (s *Sender) Send(ctx context.Context, req Request) Result {
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ts := req.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		return Result{Err: &Failure{Text: "the URL cannot be requested", Err: fmt.Errorf("build request: %w", err)}}
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("User-Agent", s.userAgent)
	signing.Headers(hr.Header, req.Secrets, req.MsgID, ts, req.Body)
	if req.AuthHeaderName != "" {
		hr.Header.Set(req.AuthHeaderName, req.AuthHeaderValue)
	}
	if s.prop != nil && req.SendTraceContext {
		s.prop.Inject(ctx, propagation.HeaderCarrier(hr.Header))
	}
	recorded := make(map[string]string, len(hr.Header))
	for k, v := range hr.Header {
		recorded[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	if req.AuthHeaderName != "" {
		recorded[strings.ToLower(req.AuthHeaderName)] = Redacted
	}

	start := time.Now()
	resp, err := s.client.Do(hr)
	if err != nil {
		return Result{Err: describe(err, timeout), Duration: time.Since(start), Headers: recorded}
	}
	defer resp.Body.Close()
	excerpt, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseExcerpt))
	res := Result{Status: resp.StatusCode, Body: string(excerpt), Headers: recorded}
	if err != nil && !res.Succeeded() {
		res.Err = describe(err, timeout)
	}
	// Drain a little more so the connection can be reused; give up on huge bodies.
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	res.Duration = time.Since(start)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		res.RetryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return res
}

// ParseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or invalid.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
