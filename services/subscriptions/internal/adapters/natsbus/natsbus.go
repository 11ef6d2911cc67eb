// Package natsbus is the subscription service's NATS side: change notifications to dispatchers
// (core NATS) and redelivery jobs onto the DELIVERIES stream (JetStream, waiting for the ack).
package natsbus

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// Lane is the delivery lane redeliveries are published on.
const Lane = "default"

// Notifier announces webhook config changes.
type Notifier struct {
	nc *nats.Conn
}

// NewNotifier returns a Notifier publishing on nc.
func NewNotifier(nc *nats.Conn) *Notifier { return &Notifier{nc: nc} }

// WebhookChanged publishes an empty message on webhooks.changed.<id>.
func (n *Notifier) WebhookChanged(_ context.Context, webhookID string) error {
	if err := n.nc.Publish(streams.WebhookChangesPrefix+webhookID, nil); err != nil {
		return fmt.Errorf("publish change of %s: %w", webhookID, err)
	}
	return nil
}

// Redeliverer publishes redelivery jobs.
type Redeliverer struct {
	js  jetstream.JetStream
	now func() time.Time
}

// NewRedeliverer returns a Redeliverer publishing through js.
func NewRedeliverer(js jetstream.JetStream) *Redeliverer {
	return &Redeliverer{js: js, now: time.Now}
}

// Redeliver publishes a DeliveryJob for d (attempt 1, redelivery) on the ready subject with a
// fresh Nats-Msg-Id and waits for the stream's ack.
func (r *Redeliverer) Redeliver(ctx context.Context, d domain.Delivery, eventTime time.Time) error {
	job := &webhooksv1.DeliveryJob{
		DeliveryId: d.ID,
		EventId:    d.EventID,
		EventType:  d.EventType,
		AccountId:  d.AccountID,
		WebhookId:  d.WebhookID,
		Attempt:    1,
		Payload:    d.Payload,
		Redelivery: true,
	}
	if !eventTime.IsZero() {
		job.EventTime = timestamppb.New(eventTime)
	}
	body, err := proto.Marshal(job)
	if err != nil {
		return fmt.Errorf("redeliver %s: marshal: %w", d.ID, err)
	}
	msg := nats.NewMsg(streams.ReadySubject(Lane, d.ID))
	msg.Data = body
	msg.Header.Set(jetstream.MsgIDHeader, d.ID+".r"+strconv.FormatInt(r.now().UnixNano(), 10))
	if _, err := r.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("redeliver %s: publish: %w", d.ID, err)
	}
	return nil
}
