package chaos

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/customertext/webhooks/libs/streams"
)

// Tally is what the ledger holds against what was produced.
type Tally struct {
	// Produced is the number of (event, webhook) deliveries owed: every confirmed contact times
	// every expected webhook of its account.
	Produced int `json:"produced"`
	// Delivered is how many of those reached a 2xx answer.
	Delivered int `json:"delivered"`
	// Lost is Produced − Delivered.
	Lost int `json:"lost"`
	// DuplicatesSameID counts further 2xx answers to the same event with the same webhook-id:
	// at-least-once delivery, deduplicable by the receiver.
	DuplicatesSameID int `json:"duplicates_same_id"`
	// DuplicatesOtherID counts further webhook-ids for one event at one endpoint: a receiver
	// could not deduplicate them. Must be 0.
	DuplicatesOtherID int `json:"duplicates_other_id"`
	// BadSignatures counts requests whose Standard Webhooks signature did not verify. Must be 0.
	BadSignatures int `json:"bad_signatures"`
	// Unexpected counts delivered events nobody is owed, e.g. a contact whose CreateContact
	// call failed on the client's side after it was committed.
	Unexpected int `json:"unexpected"`
	// LostSample names a few lost deliveries.
	LostSample []string `json:"-"`
}

// Tally compares the ledger with the producer.
func (p *Platform) Tally() Tally {
	var t Tally
	owed := map[*Endpoint]map[string]bool{}
	for w, keys := range p.Producer.expected() {
		m := owed[w.Endpoint]
		if m == nil {
			m = map[string]bool{}
			owed[w.Endpoint] = m
		}
		for _, k := range keys {
			m[k] = true
			t.Produced++
			if w.Endpoint.Delivered(k) {
				t.Delivered++
			} else if len(t.LostSample) < 5 {
				t.LostSample = append(t.LostSample, w.Endpoint.Name+":"+k)
			}
		}
	}
	t.Lost = t.Produced - t.Delivered
	for _, e := range p.Ledger.Endpoints() {
		s := e.Snapshot()
		t.BadSignatures += s.BadSig
		for k, ids := range s.Receipts {
			if !owed[e][k] {
				t.Unexpected++
			}
			t.DuplicatesOtherID += len(ids) - 1
			for _, n := range ids {
				t.DuplicatesSameID += n - 1
			}
		}
	}
	return t
}

// WaitDelivered waits until nothing is lost, or timeout passes, or no dispatcher is left to
// deliver, and returns the last tally.
func (p *Platform) WaitDelivered(ctx context.Context, timeout time.Duration) Tally {
	deadline := time.Now().Add(timeout)
	for {
		t := p.Tally()
		if t.Lost == 0 || time.Now().After(deadline) || ctx.Err() != nil || len(p.Stack.Dispatchers()) == 0 {
			return t
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// consumers are the durable consumers whose backlog must drain.
var consumers = []struct{ stream, name string }{
	{streams.Events, streams.FanoutConsumer},
	{streams.Deliveries, streams.DeliveryConsumer},
	{streams.Deliveries, streams.DeliveryBulkConsumer},
	{streams.Attempts, streams.AttemptLogConsumer},
}

// WaitIdle waits until every durable consumer has nothing pending and nothing awaiting an ack:
// a message retried forever, or one holding an ack-pending slot for good, keeps it from idling.
func (p *Platform) WaitIdle(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		busy, err := p.backlog(ctx)
		if err == nil && len(busy) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil {
				return err
			}
			return fmt.Errorf("consumers still busy %s after the deliveries drained: %s", timeout, strings.Join(busy, ", "))
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (p *Platform) backlog(ctx context.Context) ([]string, error) {
	var busy []string
	for _, c := range consumers {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		cons, err := p.js.Consumer(cctx, c.stream, c.name)
		var info *jetstream.ConsumerInfo
		if err == nil {
			info, err = cons.Info(cctx)
		}
		cancel()
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", c.name, err)
		}
		if info.NumPending > 0 || info.NumAckPending > 0 {
			busy = append(busy, fmt.Sprintf("%s pending=%d ack_pending=%d redelivered=%d", c.name, info.NumPending, info.NumAckPending, info.NumRedelivered))
		}
	}
	return busy, nil
}

// NotReady names every running service process whose /readyz does not answer 200 within
// timeout: alive but cut off from a dependency (e.g. a NATS connection the server closed).
func (p *Platform) NotReady(ctx context.Context, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		var out []string
		for _, proc := range p.Stack.Procs() {
			if proc.Exited() {
				continue
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+proc.AdminAddr+"/readyz", nil)
			if err != nil {
				out = append(out, proc.Name+": "+err.Error())
				continue
			}
			resp, err := client.Do(req)
			if err != nil {
				out = append(out, proc.Name+": "+err.Error())
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				out = append(out, fmt.Sprintf("%s: /readyz answered %d", proc.Name, resp.StatusCode))
			}
		}
		if len(out) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			sort.Strings(out)
			return out
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Crashed names every service process that exited on its own (a scenario's deliberate kills are
// followed by restarts, which replace the process), with how it ended.
func (p *Platform) Crashed() []string {
	var out []string
	for _, proc := range p.Stack.Procs() {
		if proc.Exited() {
			out = append(out, fmt.Sprintf("%s (%v; log %s)", proc.Name, proc.ExitErr(), proc.LogPath))
		}
	}
	for i := range p.NATS.Nodes() {
		if !p.NATS.Running(i) {
			out = append(out, fmt.Sprintf("nats-server n%d", i))
		}
	}
	sort.Strings(out)
	return out
}
