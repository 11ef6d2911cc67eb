package worker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/streams"
)

type publishedBatches struct {
	mu      sync.Mutex
	batches [][]*webhooksv1.AttemptRecord
	fail    error
	gate    chan struct{}
}

func (p *publishedBatches) publish(_ context.Context, m *nats.Msg) error {
	if p.gate != nil {
		<-p.gate
	}
	if m.Subject != streams.AttemptBatchSubject || m.Header.Get(streams.AttemptBatchHeader) != "1" {
		return errors.New("not a marked batch")
	}
	var b webhooksv1.AttemptBatch
	if err := proto.Unmarshal(m.Data, &b); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batches = append(p.batches, b.GetRecords())
	return p.fail
}

func TestRecordBatcherGroupsConcurrentRecords(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	pub := &publishedBatches{gate: gate}
	b := &recordBatcher{publish: pub.publish, in: make(chan pendingRecord, maxBatchRecords)}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); b.Run(ctx) }()

	// The first record's publish is held open; the next 100 queue up behind it meanwhile.
	first := b.Add(ctx, &webhooksv1.AttemptRecord{AttemptId: "att_0"})
	var rest []<-chan error
	for i := range 100 {
		rest = append(rest, b.Add(ctx, &webhooksv1.AttemptRecord{AttemptId: "att_" + string(rune('a'+i%26))}))
	}
	close(gate)
	for i, done := range append([]<-chan error{first}, rest...) {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("record %d never stored", i)
		}
	}
	pub.mu.Lock()
	n, total := len(pub.batches), 0
	for _, bt := range pub.batches {
		total += len(bt)
	}
	pub.mu.Unlock()
	if total != 101 {
		t.Errorf("got %d records published, want 101", total)
	}
	if n > 3 {
		t.Errorf("got %d messages for 101 records queued together, want them batched (at most 3)", n)
	}
	cancel()
	<-stopped
}

func TestRecordBatcherSplitsBySizeAndReportsFailures(t *testing.T) {
	t.Parallel()
	pub := &publishedBatches{fail: errors.New("jetstream unavailable")}
	b := &recordBatcher{publish: pub.publish, in: make(chan pendingRecord, maxBatchRecords)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	big := strings.Repeat("x", 100<<10)
	var dones []<-chan error
	for i := range 5 {
		dones = append(dones, b.Add(ctx, &webhooksv1.AttemptRecord{AttemptId: "att_" + string(rune('0'+i)), Payload: []byte(big)}))
	}
	go b.Run(ctx)
	for i, done := range dones {
		if err := <-done; err == nil || !strings.Contains(err.Error(), "jetstream unavailable") {
			t.Errorf("record %d: got %v, want the publish error", i, err)
		}
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	for _, bt := range pub.batches {
		size := 0
		for _, r := range bt {
			size += proto.Size(r)
		}
		if size > maxBatchBytes {
			t.Errorf("a batch of %d bytes exceeds %d", size, maxBatchBytes)
		}
	}
	if len(pub.batches) < 2 {
		t.Errorf("got %d batches for 500 KiB of records, want them split", len(pub.batches))
	}
}
