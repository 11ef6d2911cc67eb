package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/services/dispatcher/internal/metrics"
)

// TestLeftoversBelowTheAckFloor finds only ready jobs of the lane that the consumer will never
// deliver again (not pending retry schedules, below every floor by design, nor jobs still to
// deliver) and sweeps one seen twice: dead-lettered in the log, then removed.
func TestLeftoversBelowTheAckFloor(t *testing.T) {
	t.Parallel()
	_, url := startNATS(t)
	_, js := connectJS(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cons, err := streams.EnsureConsumer(ctx, js, streams.Deliveries, jetstream.ConsumerConfig{
		Durable: streams.DeliveryConsumer, FilterSubject: streams.ReadySubject("default", ">"),
		AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 1})
	if err != nil {
		t.Fatal(err)
	}
	sched := nats.NewMsg(streams.ScheduleSubject("del_waiting", ""))
	sched.Data = []byte("x")
	sched.Header.Set("Nats-Schedule", "@at "+time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano))
	sched.Header.Set("Nats-Schedule-Target", streams.ReadySubject("default", "del_waiting"))
	publish := func(m *nats.Msg) {
		t.Helper()
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	publish(sched)
	publish(poisonJob(t, "del_given_up", "del_given_up"))
	publish(nats.NewMsg(streams.ReadySubject("default", "del_done")))
	publish(nats.NewMsg(streams.ReadySubject("bulk", "del_other_lane")))
	b, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range b.Messages() {
		if m.Subject() == streams.ReadySubject("default", "del_done") {
			_ = m.DoubleAck(ctx)
		} else {
			_ = m.Nak() // MaxDeliver 1: given up on, the floor moves past it, it stays stored
		}
	}
	// A pull makes the consumer look at its redeliveries and give up on the nak'd job.
	if b, err := cons.FetchNoWait(1); err == nil {
		for m := range b.Messages() {
			t.Errorf("got %s, want nothing more to deliver", m.Subject())
		}
	}
	publish(nats.NewMsg(streams.ReadySubject("default", "del_acked_later")))
	if b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second)); err == nil {
		for m := range b.Messages() {
			_ = m.DoubleAck(ctx)
		}
	}
	publish(nats.NewMsg(streams.ReadySubject("default", "del_still_to_deliver")))
	var floor uint64
	// The floor moves past a job given up on once a later one is acked.
	eventually(t, 10*time.Second, "ack floor past the acked jobs", func() bool {
		ci, err := cons.Info(ctx)
		if err != nil {
			return false
		}
		floor = ci.AckFloor.Stream
		return floor >= 5
	})
	seqs, err := belowFloor(ctx, js, "default", floor, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 1 || seqs[0] != 2 {
		t.Fatalf("below the floor: got %v, want [2] (the job given up on)", seqs)
	}
	if got, _ := belowFloor(ctx, js, "default", floor, 0); len(got) != 0 {
		t.Errorf("limit 0: got %v, want none", got)
	}

	// The sweep acts on a leftover seen at two polls in a row: dead-lettered, then removed.
	attempts := newAttemptReader(t, js)
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	seen := sweep(ctx, js, nil, seqs, m, logger)
	if recs := attempts.poll(t); len(recs) != 0 || !seen[2] {
		t.Fatalf("first sighting: got %d records and %v, want none and the job remembered", len(recs), seen)
	}
	seen = sweep(ctx, js, seen, seqs, m, logger)
	var recs []*webhooksv1.AttemptRecord
	eventually(t, 10*time.Second, "a dead-letter record", func() bool { recs = attempts.poll(t); return len(recs) > 0 })
	if r := recs[0]; len(recs) != 1 || r.GetDeliveryId() != "del_given_up" || r.GetOutcome() != webhooksv1.Outcome_OUTCOME_DEAD_LETTERED ||
		r.GetAttemptId() != "att_left_2" {
		t.Errorf("records: got %v, want one dead letter att_left_2 of del_given_up", recs)
	}
	if got, _ := belowFloor(ctx, js, "default", floor, 1000); len(got) != 0 || len(seen) != 0 {
		t.Errorf("after the sweep: got %v below the floor and %v remembered, want none", got, seen)
	}
	if got := testutil.ToFloat64(m.LeftoversSwept); got != 1 {
		t.Errorf("swept: got %v, want 1", got)
	}
	// The job still to deliver is untouched.
	s, err := js.Stream(ctx, streams.Deliveries)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLastMsgForSubject(ctx, streams.ReadySubject("default", "del_still_to_deliver")); err != nil {
		t.Errorf("the job above the floor: %v, want it kept", err)
	}
}
