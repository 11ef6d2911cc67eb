package natsbus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// BulkLane is the dispatchers' lane for work that must not delay other accounts (it must match
// the dispatcher's fanout.BulkLane): recoveries ride it.
const BulkLane = "bulk"

// Recover publishes a DeliveryJob for d (attempt 1, a redelivery) on the bulk lane. Its
// Nats-Msg-Id is the same for every recovery of one (event, webhook), so DELIVERIES drops a second
// one inside its duplicate window; queued is false then.
func (r *Redeliverer) Recover(ctx context.Context, d domain.Delivery, eventTime time.Time) (queued bool, err error) {
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
		return false, fmt.Errorf("recover %s: marshal: %w", d.ID, err)
	}
	msg := nats.NewMsg(streams.ReadySubject(BulkLane, d.ID))
	msg.Data = body
	msg.Header.Set(jetstream.MsgIDHeader, d.ID+".recover")
	ack, err := r.js.PublishMsg(ctx, msg)
	if err != nil {
		return false, fmt.Errorf("recover %s: publish: %w", d.ID, err)
	}
	return !ack.Duplicate, nil
}
