package streams

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// MaxDeliver bounds how often any durable consumer delivers one message. A message that keeps
// failing (its handler naks it, or its process dies while holding it) stops being delivered
// after this many tries instead of holding an ack-pending slot forever; the server then
// publishes a max-deliveries advisory (WatchMaxDeliveries) and moves the consumer's ack floor
// past it. With naks of at most MaxNakDelay this is over an hour of continuous failure: an outage
// of a stream or of PostgreSQL is outlived, a poison message is not (and is terminated long
// before, by the identity rule and the parsers).
const MaxDeliver = 1000

// MaxNakDelay caps the dispatcher's back-off between redeliveries of a message that failed for a
// transient reason: short enough that work resumes within seconds of an outage's end.
const MaxNakDelay = 5 * time.Second

// NakDelay is the back-off before a message that failed for a transient reason is delivered
// again: base doubled per delivery so far, at most ceiling.
func NakDelay(numDelivered uint64, base, ceiling time.Duration) time.Duration {
	d := base
	for i := uint64(1); i < numDelivered && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

// MaxDeliveriesSubject is the subject of the server's advisory that consumer of stream gave up
// on a message after MaxDeliver deliveries.
func MaxDeliveriesSubject(stream, consumer string) string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + stream + "." + consumer
}

// MaxDeliveries is the server's advisory for a message a consumer gave up on.
type MaxDeliveries struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// WatchMaxDeliveries calls handle for every max-deliveries advisory of consumer on stream until
// the returned subscription is unsubscribed. Replicas share the queue group, so each advisory is
// handled once. The server sends the advisory at most once (core NATS): one sent while no replica
// listens is missed, which the consumer's ack floor and the stream's state still show.
func WatchMaxDeliveries(nc *nats.Conn, stream, consumer, queue string, handle func(MaxDeliveries)) (*nats.Subscription, error) {
	sub, err := nc.QueueSubscribe(MaxDeliveriesSubject(stream, consumer), queue, func(m *nats.Msg) {
		var a MaxDeliveries
		if err := json.Unmarshal(m.Data, &a); err != nil || a.StreamSeq == 0 {
			return
		}
		handle(a)
	})
	if err != nil {
		return nil, fmt.Errorf("watch max deliveries of %s: %w", consumer, err)
	}
	if err := nc.Flush(); err != nil {
		return nil, fmt.Errorf("watch max deliveries of %s: %w", consumer, err)
	}
	return sub, nil
}
