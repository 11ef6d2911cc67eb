// Package telemetry sets up what every service exports to SREs: structured logs (log/slog),
// a Prometheus registry with the Go and process collectors, and an OpenTelemetry tracer provider
// that exports over OTLP/gRPC when an endpoint is configured and is a no-op otherwise. Trace
// context crosses NATS in message headers (W3C traceparent), see Inject and Extract.
package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// NewLogger returns a JSON (or text) slog logger writing to w at the given level name.
func NewLogger(w io.Writer, service, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("parse log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch strings.ToLower(format) {
	case "", "json":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("unknown log format %q (want json or text)", format)
	}
	return slog.New(h).With("service", service), nil
}

// NewRegistry returns a Prometheus registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Tracing is a service's tracer provider and the propagator for its transports.
type Tracing struct {
	Provider   trace.TracerProvider
	Propagator propagation.TextMapPropagator
	shutdown   func(context.Context) error
}

// NewTracing exports spans over OTLP/gRPC when endpoint is not empty; otherwise spans are not
// recorded but trace context is still propagated. endpoint is a URL ("https://collector:4317";
// "http://" means plaintext) or, as before, host:port (TLS unless OTEL_EXPORTER_OTLP_INSECURE or
// OTEL_EXPORTER_OTLP_TRACES_INSECURE is true). Everything else is the standard OpenTelemetry
// environment, read by the SDK and the exporter themselves: OTEL_EXPORTER_OTLP_HEADERS,
// _CERTIFICATE, _CLIENT_KEY/_CLIENT_CERTIFICATE, _COMPRESSION, _TIMEOUT (and their _TRACES_
// forms), OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME (over the service and version given
// here), OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (default parentbased_always_on),
// OTEL_BSP_* for batching.
func NewTracing(ctx context.Context, service, version, endpoint string) (*Tracing, error) {
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	if endpoint == "" {
		return &Tracing{Provider: noop.NewTracerProvider(), Propagator: prop, shutdown: func(context.Context) error { return nil }}, nil
	}
	opt := otlptracegrpc.WithEndpoint(endpoint)
	if strings.Contains(endpoint, "://") {
		opt = otlptracegrpc.WithEndpointURL(endpoint)
	}
	exp, err := otlptracegrpc.New(ctx, opt)
	if err != nil {
		return nil, fmt.Errorf("create otlp exporter: %w", err)
	}
	// Later options win: the environment's attributes override the built-in service name.
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(service), semconv.ServiceVersion(version)),
		resource.WithTelemetrySDK(), resource.WithHost(), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracing{Provider: tp, Propagator: prop, shutdown: tp.Shutdown}, nil
}

// Tracer returns the tracer of the platform's own instrumentation.
func (t *Tracing) Tracer() trace.Tracer {
	return t.Provider.Tracer("github.com/customertext/webhooks")
}

// Shutdown flushes pending spans.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if err := t.shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown tracing: %w", err)
	}
	return nil
}

// Inject writes the trace context of ctx into NATS headers.
func (t *Tracing) Inject(ctx context.Context, h nats.Header) {
	t.Propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

// Extract returns ctx carrying the trace context found in NATS headers.
func (t *Tracing) Extract(ctx context.Context, h nats.Header) context.Context {
	return t.Propagator.Extract(ctx, propagation.HeaderCarrier(h))
}
