package natsbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/customertext/webhooks/libs/streams"
)

// A read whose no-wait pulls come back empty while messages are pending pauses between them and
// gives up after maxEmptyPulls (~5 s).
const (
	emptyPullPause = 50 * time.Millisecond
	maxEmptyPulls  = 100
)

// EventLog reads the EVENTS stream: recent events for samples, and a time range for recovery.
type EventLog struct {
	js jetstream.JetStream
}

// NewEventLog returns an EventLog reading through js.
func NewEventLog(js jetstream.JetStream) *EventLog { return &EventLog{js: js} }

// Recent returns the bodies of the n most recent events of the account and type, newest first.
//
// JetStream can fetch the last message of a subject but has no "previous by subject", so this
// reads the subject forward from a window of sequences before its last message, widening the
// window eightfold until it holds n messages or reaches the stream's first sequence. An ordered
// consumer filtered to the subject only delivers that subject's messages.
func (l *EventLog) Recent(ctx context.Context, accountID, eventType string, n int) ([][]byte, error) {
	subject := streams.EventSubject(accountID, eventType)
	stream, err := l.js.Stream(ctx, streams.Events)
	if err != nil {
		return nil, fmt.Errorf("recent events: %w", err)
	}
	last, err := stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("recent events: last of %s: %w", subject, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("recent events: %w", err)
	}
	first := info.State.FirstSeq
	for window := uint64(64); ; window *= 8 {
		start := first
		if last.Sequence > window && last.Sequence-window+1 > first {
			start = last.Sequence - window + 1
		}
		var bodies [][]byte
		err := l.read(ctx, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{subject},
			DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:    start,
		}, last.Sequence, func(data []byte) error {
			bodies = append(bodies, data)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("recent events of %s: %w", subject, err)
		}
		if len(bodies) >= n || start == first {
			if len(bodies) > n {
				bodies = bodies[len(bodies)-n:]
			}
			for i, j := 0, len(bodies)-1; i < j; i, j = i+1, j-1 {
				bodies[i], bodies[j] = bodies[j], bodies[i]
			}
			return bodies, nil
		}
	}
}

// Scan calls fn with the body of every event of the account and types stored at or after
// since, oldest first, up to the stream's last message when Scan started (events published
// during the scan are the fan-out's business).
func (l *EventLog) Scan(ctx context.Context, accountID string, types []string, since time.Time, fn func([]byte) error) error {
	stream, err := l.js.Stream(ctx, streams.Events)
	if err != nil {
		return fmt.Errorf("scan events: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("scan events: %w", err)
	}
	subjects := make([]string, 0, len(types))
	for _, t := range types {
		subjects = append(subjects, streams.EventSubject(accountID, t))
	}
	return l.read(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: subjects,
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &since,
	}, info.State.LastSeq, fn)
}

// read delivers the messages of an ordered consumer up to the stream sequence upTo.
func (l *EventLog) read(ctx context.Context, cfg jetstream.OrderedConsumerConfig, upTo uint64, fn func([]byte) error) error {
	cons, err := l.js.OrderedConsumer(ctx, streams.Events, cfg)
	if err != nil {
		return fmt.Errorf("ordered consumer: %w", err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("consumer info: %w", err)
	}
	if ci.NumPending == 0 {
		return nil
	}
	for empty := 0; ; {
		// Only stored messages are read, so the pull need not wait for new ones; and every
		// message of a batch is drained, so no fetch outlives the read.
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		done, ferr, got := false, error(nil), 0
		for m := range batch.Messages() {
			got++
			if done {
				continue
			}
			meta, err := m.Metadata()
			if err != nil {
				done, ferr = true, fmt.Errorf("metadata: %w", err)
				continue
			}
			if meta.Sequence.Stream > upTo {
				done = true
				continue
			}
			if err := fn(m.Data()); err != nil {
				done, ferr = true, err
				continue
			}
			done = meta.Sequence.Stream == upTo || meta.NumPending == 0
		}
		if done {
			return ferr
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("fetch: %w", err)
		}
		if got > 0 {
			empty = 0
			continue
		}
		// Pending messages that a no-wait pull did not return: the consumer is catching up.
		if empty++; empty > maxEmptyPulls {
			return fmt.Errorf("fetch: no messages after %d pulls with %d pending", empty, ci.NumPending)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(emptyPullPause):
		}
	}
}
