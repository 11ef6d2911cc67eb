package worker

import (
	"context"
	"net/http"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/customertext/webhooks/libs/delivery"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/libs/telemetry"
	"github.com/customertext/webhooks/services/dispatcher/internal/fanout"
)

// startDelivery opens the spans of one job (messaging conventions): "process" from the moment the
// job became ready (its stream timestamp) to its settlement, with a child "queue wait" span up to
// its pickup. A first attempt continues the fan-out's trace as its child. A retry, or a job
// deferred earlier, starts a trace of its own linked to the one it carries: it may run hours
// after the original request, which a child span would stretch over. The returned function ends
// the span.
func (p *Pool) startDelivery(ctx context.Context, msg jetstream.Msg, job *webhooksv1.DeliveryJob, lane string) (context.Context, func()) {
	if p.tracer == nil {
		return ctx, func() {}
	}
	h := nats.Header{}
	fanout.CopyTrace(msg.Headers(), h)
	carried := trace.SpanContextFromContext(p.tracer.Extract(ctx, h))
	ready := p.now()
	if meta, err := msg.Metadata(); err == nil {
		ready = meta.Timestamp
	}
	m := telemetry.Messaging{Operation: "process", Type: "process", Destination: msg.Subject(),
		Template: "deliveries.ready." + lane + ".{delivery_id}", MessageID: job.GetDeliveryId(),
		ConsumerGroup: consumerOf(lane)}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithTimestamp(ready),
		trace.WithAttributes(m.Attributes()...),
		trace.WithAttributes(attribute.Int("webhook.attempt", int(job.GetAttempt())), attribute.String("webhook.lane", lane))}
	parent := ctx
	switch {
	case job.GetAttempt() > 1 || msg.Headers().Get(deferredHeader) != "":
		opts = append(opts, trace.WithNewRoot())
		if carried.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: carried,
				Attributes: []attribute.KeyValue{attribute.String("link.reason", "retry of the delivery this trace continues")}}))
		}
	case carried.IsValid():
		parent = trace.ContextWithRemoteSpanContext(ctx, carried)
	}
	tr := p.tracer.Tracer()
	spanCtx, span := tr.Start(parent, m.SpanName(), opts...)
	_, wait := tr.Start(spanCtx, "queue wait", trace.WithTimestamp(ready))
	wait.End()
	return spanCtx, func() { span.End() }
}

// startPost opens the client span of the HTTP attempt; its context is what the request's
// traceparent carries when the webhook chose to receive it. The returned function records the result and ends the span.
func (p *Pool) startPost(ctx context.Context) (context.Context, func(delivery.Result)) {
	if p.tracer == nil {
		return ctx, func(delivery.Result) {}
	}
	ctx, span := p.tracer.Tracer().Start(ctx, http.MethodPost, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", http.MethodPost)))
	return ctx, func(res delivery.Result) {
		if res.Status != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", res.Status))
		}
		if !res.Succeeded() {
			reason := res.ErrorText()
			if reason == "" {
				reason = "status " + strconv.Itoa(res.Status)
			}
			span.SetStatus(codes.Error, reason)
		}
		span.End()
	}
}

// consumerOf names the durable consumer of a lane.
func consumerOf(lane string) string {
	if lane == fanout.BulkLane {
		return streams.DeliveryBulkConsumer
	}
	return streams.DeliveryConsumer
}
