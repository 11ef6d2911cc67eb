package fanout

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/libs/telemetry"
)

// startSpan opens the consumer span of one event's fan-out, a child of the relay's publish span
// whose context the event carries, and returns the context the event's jobs are to carry on.
// Without tracing it returns nil.
func (f *Fanout) startSpan(ctx context.Context, p *planned) context.Context {
	if f.cfg.Tracing == nil {
		return nil
	}
	h := nats.Header{}
	CopyTrace(p.msg.Headers(), h) // any header case
	parent := f.cfg.Tracing.Extract(context.WithoutCancel(ctx), h)
	m := telemetry.Messaging{Operation: "process", Type: "process", Destination: p.msg.Subject(),
		Template: "events.{account_id}.{event_type}", MessageID: p.msg.Headers().Get("Nats-Msg-Id"),
		ConsumerGroup: streams.FanoutConsumer}
	spanCtx, span := f.cfg.Tracing.Tracer().Start(parent, m.SpanName(),
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(m.Attributes()...))
	p.span = span
	return spanCtx
}

// traceJobs makes the jobs carry the fan-out span's context instead of the event's.
func (f *Fanout) traceJobs(spanCtx context.Context, jobs []*nats.Msg) {
	if spanCtx == nil {
		return
	}
	for _, j := range jobs {
		f.cfg.Tracing.Inject(spanCtx, j.Header)
	}
}

// endSpan ends the event's span, marking it failed with err.
func (p *planned) endSpan(err error) {
	if p.span == nil {
		return
	}
	if err != nil {
		p.span.SetStatus(codes.Error, err.Error())
	}
	p.span.End()
}
