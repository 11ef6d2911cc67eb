package telemetry

import (
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
)

// Messaging describes one messaging operation on a span, after OpenTelemetry's semantic
// conventions for messaging (messaging.*). Destination names are subjects; the template is the
// subject's shape with its variable parts named, which stays bounded for span names.
type Messaging struct {
	// Operation is the operation's name: "publish", "process", "receive", "create", "settle".
	Operation string
	// Type is messaging.operation.type: "publish", "create", "receive", "process", "settle".
	Type string
	// Destination is the subject; Template its shape ("events.{account_id}.{event_type}").
	Destination, Template string
	// MessageID identifies the message (the event id, the delivery id).
	MessageID string
	// ConsumerGroup is the durable consumer that reads the message, if any.
	ConsumerGroup string
}

// SpanName is "<operation> <template>", the conventions' span name.
func (m Messaging) SpanName() string { return m.Operation + " " + m.Template }

// Attributes returns the span attributes of the operation.
func (m Messaging) Attributes() []attribute.KeyValue {
	kv := []attribute.KeyValue{
		attribute.String("messaging.system", "nats"),
		semconv.MessagingOperationName(m.Operation),
		semconv.MessagingOperationTypeKey.String(m.Type),
		semconv.MessagingDestinationName(m.Destination),
		semconv.MessagingDestinationTemplate(m.Template),
	}
	if m.MessageID != "" {
		kv = append(kv, semconv.MessagingMessageID(m.MessageID))
	}
	if m.ConsumerGroup != "" {
		kv = append(kv, attribute.String("messaging.consumer.group.name", m.ConsumerGroup))
	}
	return kv
}
