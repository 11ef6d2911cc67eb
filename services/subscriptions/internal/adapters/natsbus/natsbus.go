// Package natsbus is the subscription service's NATS side: change notifications to dispatchers
// (core NATS) and redelivery jobs onto the DELIVERIES stream (JetStream, waiting for the ack).
package natsbus

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/identity"
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
	js         jetstream.JetStream
	now        func() time.Time
	generation func() string
}

// NewRedeliverer returns a Redeliverer publishing through js.
func NewRedeliverer(js jetstream.JetStream) *Redeliverer {
	r := &Redeliverer{js: js, now: time.Now}
	r.generation = r.newGeneration
	return r
}

// Redeliver publishes a DeliveryJob for d (attempt 1 of a new chain, redelivery) on the ready
// subject and waits for the stream's ack. The chain gets a fresh generation, which is part of
// every Nats-Msg-Id and schedule subject of its attempts: its retries never collide with those of
// another chain of d (the fan-out's, an earlier redelivery's) inside the duplicate window. A
// publish acked as a duplicate stored nothing, so it is an error.
func (r *Redeliverer) Redeliver(ctx context.Context, d domain.Delivery, eventTime time.Time) error {
	// Every id here becomes part of a subject or a Nats-Msg-Id.
	for _, err := range []error{identity.Delivery(d.ID), identity.Event(d.EventID), identity.Account(d.AccountID),
		identity.Webhook(d.WebhookID)} {
		if err != nil {
			return fmt.Errorf("redeliver: %w", err)
		}
	}
	job := &webhooksv1.DeliveryJob{
		DeliveryId: d.ID,
		EventId:    d.EventID,
		EventType:  d.EventType,
		AccountId:  d.AccountID,
		WebhookId:  d.WebhookID,
		Attempt:    1,
		Payload:    d.Payload,
		Redelivery: true,
		Generation: r.generation(),
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
	msg.Header.Set(jetstream.MsgIDHeader, streams.JobMsgID(d.ID, job.GetGeneration(), 1))
	ack, err := r.js.PublishMsg(ctx, msg)
	if err != nil {
		return fmt.Errorf("redeliver %s: publish: %w", d.ID, err)
	}
	if ack.Duplicate {
		return fmt.Errorf("redeliver %s: publish acked as a duplicate of %s, nothing stored", d.ID, msg.Header.Get(jetstream.MsgIDHeader))
	}
	return nil
}

// newGeneration is a fresh chain token: the time in base 36 and 8 random hex digits, within the
// identity rules and streams.MaxGenerationLen.
func (r *Redeliverer) newGeneration() string {
	return "r" + strconv.FormatInt(r.now().UnixNano(), 36) + strings.ReplaceAll(uuid.NewString(), "-", "")[:8]
}
