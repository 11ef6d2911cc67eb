package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/streams"
)

// Limits of one AttemptBatch message: well under the stream's and the server's message size.
const (
	maxBatchRecords = 256
	maxBatchBytes   = 256 << 10
)

// errBatcherStopped is returned for records added after the batcher stopped.
var errBatcherStopped = errors.New("attempt record batcher stopped")

// recordBatcher publishes the attempt records of concurrent attempts together, one AttemptBatch
// per JetStream message, and tells each caller when its record is stored. While one batch waits
// for its acknowledgement the next one fills, so batches grow with load and a lone record waits
// no longer than one round trip.
type recordBatcher struct {
	publish func(ctx context.Context, msg *nats.Msg) error
	in      chan pendingRecord
}

type pendingRecord struct {
	rec  *webhooksv1.AttemptRecord
	size int
	done chan error
}

func newRecordBatcher(js jetstream.JetStream, timeout time.Duration) *recordBatcher {
	return &recordBatcher{
		publish: func(ctx context.Context, msg *nats.Msg) error {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			_, err := js.PublishMsg(ctx, msg)
			return err
		},
		in: make(chan pendingRecord, maxBatchRecords),
	}
}

// Add queues rec; the returned channel yields nil once it is stored, or the error.
func (b *recordBatcher) Add(ctx context.Context, rec *webhooksv1.AttemptRecord) <-chan error {
	done := make(chan error, 1)
	select {
	case b.in <- pendingRecord{rec: rec, size: proto.Size(rec), done: done}:
	case <-ctx.Done():
		done <- ctx.Err()
	}
	return done
}

// Run publishes batches until ctx ends, then fails what is still queued.
func (b *recordBatcher) Run(ctx context.Context) {
	var carry *pendingRecord
	for {
		var first pendingRecord
		if carry != nil {
			first, carry = *carry, nil
		} else {
			select {
			case first = <-b.in:
			case <-ctx.Done():
				b.failQueued(errBatcherStopped)
				return
			}
		}
		batch, size := []pendingRecord{first}, first.size
	fill:
		for len(batch) < maxBatchRecords {
			select {
			case p := <-b.in:
				if size+p.size > maxBatchBytes {
					carry = &p
					break fill
				}
				batch, size = append(batch, p), size+p.size
			default:
				break fill
			}
		}
		err := b.flush(ctx, batch)
		for _, p := range batch {
			p.done <- err
		}
	}
}

func (b *recordBatcher) flush(ctx context.Context, batch []pendingRecord) error {
	msg := &webhooksv1.AttemptBatch{Records: make([]*webhooksv1.AttemptRecord, len(batch))}
	for i, p := range batch {
		msg.Records[i] = p.rec
	}
	body, err := proto.Marshal(msg)
	if err != nil {
		return fmt.Errorf("marshal attempt batch: %w", err)
	}
	m := nats.NewMsg(streams.AttemptBatchSubject)
	m.Header.Set(streams.AttemptBatchHeader, "1")
	m.Data = body
	if err := b.publish(ctx, m); err != nil {
		return fmt.Errorf("publish %d attempt records: %w", len(batch), err)
	}
	return nil
}

func (b *recordBatcher) failQueued(err error) {
	for {
		select {
		case p := <-b.in:
			p.done <- err
		default:
			return
		}
	}
}
