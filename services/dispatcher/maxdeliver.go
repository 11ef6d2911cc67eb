package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/services/dispatcher/internal/fanout"
	"github.com/customertext/webhooks/services/dispatcher/internal/metrics"
	"github.com/customertext/webhooks/services/dispatcher/internal/worker"
)

// initSeries creates every labelled series of the poison-message counters at 0, so that an
// alert on their rate sees the first increment.
func initSeries(m *metrics.Metrics) {
	for _, r := range fanout.InvalidReasons {
		m.EventsInvalid.WithLabelValues(r)
	}
	for _, r := range worker.InvalidReasons {
		m.InvalidJobs.WithLabelValues(r)
	}
	m.MaxDeliveries.WithLabelValues(streams.FanoutConsumer)
	for _, l := range laneConsumers() {
		m.MaxDeliveries.WithLabelValues(l.durable)
	}
}

// watchMaxDeliveries gives every message a dispatcher consumer gave up on (streams.MaxDeliver) a
// visible end: counted, logged, and for a delivery job a dead-letter record in the delivery log
// (so it can be redelivered from the API) before the job is removed from the work queue, where
// no consumer would deliver it again. An event stays in EVENTS (limits retention) for replay.
func watchMaxDeliveries(nc *nats.Conn, js jetstream.JetStream, m *metrics.Metrics, logger *slog.Logger) ([]*nats.Subscription, error) {
	const queue = "dispatcher-max-deliveries"
	var subs []*nats.Subscription
	add := func(stream, consumer string, handle func(streams.MaxDeliveries)) error {
		sub, err := streams.WatchMaxDeliveries(nc, stream, consumer, queue, handle)
		if err == nil {
			subs = append(subs, sub)
		}
		return err
	}
	err := add(streams.Events, streams.FanoutConsumer, func(a streams.MaxDeliveries) {
		m.MaxDeliveries.WithLabelValues(a.Consumer).Inc()
		logger.Error("fan-out gave up on an event after its maximum deliveries; it stays in the stream for replay",
			"stream", a.Stream, "consumer", a.Consumer, "stream_seq", a.StreamSeq, "deliveries", a.Deliveries)
	})
	for _, l := range laneConsumers() {
		if err != nil {
			break
		}
		err = add(streams.Deliveries, l.durable, func(a streams.MaxDeliveries) {
			m.MaxDeliveries.WithLabelValues(a.Consumer).Inc()
			// Off the connection's dispatch goroutine: this publishes and waits for acks.
			go deadLetterExhausted(js, a, logger)
		})
	}
	if err != nil {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
		return nil, err
	}
	return subs, nil
}

// deadLetterExhausted records a job its consumer gave up on as dead-lettered, then deletes it.
func deadLetterExhausted(js jetstream.JetStream, a streams.MaxDeliveries, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	why := fmt.Sprintf("not settled after %d deliveries to dispatchers; dead-lettered (redeliver it)", a.Deliveries)
	log := logger.With("consumer", a.Consumer, "deliveries", a.Deliveries)
	if err := deadLetterLeftover(ctx, js, a.StreamSeq, why, log); err != nil {
		log.Error("delivery job exhausted its deliveries; kept in the stream", "stream_seq", a.StreamSeq, "error", err)
	}
}

// deadLetterLeftover ends a job that no consumer will deliver again (given up on, or left below
// its consumer's ack floor): a DEAD_LETTERED record in the delivery log, so that it can be
// redelivered from the API, then its removal from the work queue. The record's id and time come
// from the stored message, so replicas racing over the same job write one record. If the job was
// in fact delivered (a leftover of a server crash), the record is older than the delivery's
// latest attempt and does not change its outcome. A job whose record is not stored is kept.
func deadLetterLeftover(ctx context.Context, js jetstream.JetStream, seq uint64, why string, log *slog.Logger) error {
	s, err := js.Stream(ctx, streams.Deliveries)
	if err != nil {
		return fmt.Errorf("read leftover job: %w", err)
	}
	raw, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // another replica finished it
	}
	if err != nil {
		return fmt.Errorf("read leftover job: %w", err)
	}
	log = log.With("stream_seq", seq, "subject", raw.Subject)
	job, err := worker.ParseJob(raw.Data)
	if err != nil {
		log.Error("removing an invalid leftover job", "error", err)
	} else {
		rec := &webhooksv1.AttemptRecord{
			AttemptId:   "att_left_" + strconv.FormatUint(seq, 10),
			DeliveryId:  job.GetDeliveryId(),
			EventId:     job.GetEventId(),
			EventType:   job.GetEventType(),
			AccountId:   job.GetAccountId(),
			WebhookId:   job.GetWebhookId(),
			Attempt:     job.GetAttempt(),
			Outcome:     webhooksv1.Outcome_OUTCOME_DEAD_LETTERED,
			Error:       why,
			AttemptTime: timestamppb.New(raw.Time),
			Payload:     job.GetPayload(),
		}
		body, err := proto.Marshal(&webhooksv1.AttemptBatch{Records: []*webhooksv1.AttemptRecord{rec}})
		if err != nil {
			return fmt.Errorf("marshal dead-letter record: %w", err)
		}
		msg := nats.NewMsg(streams.AttemptBatchSubject)
		msg.Header.Set(streams.AttemptBatchHeader, "1")
		msg.Data = body
		if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(rec.GetAttemptId())); err != nil {
			return fmt.Errorf("publish dead-letter record: %w", err)
		}
		log.Error("delivery job dead-lettered (redeliverable from the API)", "delivery_id", job.GetDeliveryId(),
			"attempt", job.GetAttempt(), "reason", why)
	}
	if err := s.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("remove leftover job: %w", err)
	}
	return nil
}
