package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/customertext/webhooks/libs/event"
	eventsv1 "github.com/customertext/webhooks/libs/gen/customertext/events/v1"
	"github.com/customertext/webhooks/libs/pgtest"
	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/libs/sms"
	"github.com/customertext/webhooks/libs/telemetry"
	"github.com/customertext/webhooks/services/campaigns/internal/adapters"
	"github.com/customertext/webhooks/services/campaigns/internal/app"
	"github.com/customertext/webhooks/services/campaigns/internal/domain"
	"google.golang.org/protobuf/encoding/protojson"
)

const acct = "acct_1"

// groups is a fake contacts service at the consumer's interface: group name to members.
type groups map[string][]app.Contact

func (g groups) GroupMembers(_ context.Context, _, group string) ([]app.Contact, error) {
	return g[group], nil
}

func (g groups) Get(_ context.Context, _, id string) (app.Contact, error) {
	for _, members := range g {
		for _, c := range members {
			if c.ID == id {
				return c, nil
			}
		}
	}
	return app.Contact{}, app.ErrNotFound
}

// changing is a contacts service whose contacts change after the audience is resolved.
type changing struct {
	groups
	now map[string]app.Contact
}

func (c changing) Get(ctx context.Context, acct, id string) (app.Contact, error) {
	if x, ok := c.now[id]; ok {
		return x, nil
	}
	if _, ok := c.now["deleted:"+id]; ok {
		return app.Contact{}, app.ErrNotFound
	}
	return c.groups.Get(ctx, acct, id)
}

type nopMetrics struct{}

func (nopMetrics) Recipient(domain.Result) {}
func (nopMetrics) CampaignSent()           {}

func newStore(t *testing.T) (*adapters.Store, *pgxpool.Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pool, err := postgres.Open(ctx, pgtest.NewDatabase(t), adapters.Schema, 20)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(pool.Close)
	if err := adapters.Migrate(ctx, pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	tr, err := telemetry.NewTracing(ctx, "test", "dev", "")
	if err != nil {
		t.Fatalf("tracing: %v", err)
	}
	return adapters.NewStore(pool, tr), pool
}

func audience(n int) groups {
	var cs []app.Contact
	for i := range n {
		cs = append(cs, app.Contact{ID: fmt.Sprintf("c%02d", i), Phone: fmt.Sprintf("+1555123%04d", i), OptedOut: i%5 == 0})
	}
	return groups{"customers": cs}
}

// startCampaign creates a campaign to "customers" and moves it to SENDING.
func startCampaign(t *testing.T, store *adapters.Store, sender *app.Sender) domain.Campaign {
	t.Helper()
	svc := app.NewService(store, sender)
	c, err := svc.Create(context.Background(), acct, "Sale", "20% off", []string{"customers"})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	c, err = svc.Send(context.Background(), acct, c.ID)
	if err != nil || c.State != domain.StateSending {
		t.Fatalf("send: got %v, %v; want SENDING", c.State, err)
	}
	return c
}

// crashAfter passes n sends to the provider and then "crashes": it cancels the run's context
// right after the provider accepted the message, before the sender could record it.
type crashAfter struct {
	inner  sms.Provider
	n      atomic.Int32
	cancel context.CancelFunc
}

func (p *crashAfter) Send(ctx context.Context, m sms.Message) (sms.Sent, error) {
	sent, err := p.inner.Send(context.WithoutCancel(ctx), m)
	if p.n.Add(-1) <= 0 {
		p.cancel()
	}
	return sent, err
}

// TestSendResumesWithoutSendingTwice crashes a send between provider calls and their
// recording, then resumes it: every recipient gets exactly one message and campaign_sent
// counts the whole audience once.
func TestSendResumesWithoutSendingTwice(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	sandbox := sms.NewSandbox(pool)
	aud := audience(20) // 4 opted out

	crashCtx, crash := context.WithCancel(context.Background())
	defer crash()
	crashing := &crashAfter{inner: sandbox, cancel: crash}
	crashing.n.Store(7)
	first := app.NewSender(store, aud, crashing, nopMetrics{}, logger, app.SenderConfig{Concurrency: 3, BatchSize: 5})
	c := startCampaign(t, store, first)
	if err := first.SendOne(crashCtx, app.Ref{AccountID: acct, ID: c.ID}); !errors.Is(err, context.Canceled) {
		t.Fatalf("crashed send: got %v, want context.Canceled", err)
	}
	var pending, outbox int
	if err := pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM recipients WHERE state = 'pending'), (SELECT count(*) FROM outbox)`).Scan(&pending, &outbox); err != nil {
		t.Fatalf("count: %v", err)
	}
	if pending == 0 || outbox != 0 {
		t.Fatalf("after the crash: got %d pending and %d events, want some pending and no event", pending, outbox)
	}

	second := app.NewSender(store, aud, sandbox, nopMetrics{}, logger, app.SenderConfig{Concurrency: 3, BatchSize: 5})
	if err := second.SendOne(context.Background(), app.Ref{AccountID: acct, ID: c.ID}); err != nil {
		t.Fatalf("resumed send: %v", err)
	}
	sent, err := sandbox.List(context.Background(), acct, "")
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	perPhone := map[string]int{}
	for _, m := range sent {
		perPhone[m.To]++
	}
	for _, ct := range aud["customers"] {
		want := 1
		if ct.OptedOut {
			want = 0
		}
		if perPhone[ct.Phone] != want {
			t.Errorf("%s (opted out %v): got %d messages, want %d", ct.Phone, ct.OptedOut, perPhone[ct.Phone], want)
		}
	}

	// Exactly one campaign_sent, with the counts of the whole audience.
	var bodies [][]byte
	rows, err := pool.Query(context.Background(), `SELECT body FROM outbox`)
	if err != nil {
		t.Fatalf("outbox: %v", err)
	}
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatalf("scan: %v", err)
		}
		bodies = append(bodies, b)
	}
	if len(bodies) != 1 {
		t.Fatalf("got %d outbox events, want 1", len(bodies))
	}
	env, err := event.Parse(bodies[0])
	if err != nil || env.Event != event.CampaignSent {
		t.Fatalf("got event %q (%v), want campaign_sent", env.Event, err)
	}
	var got eventsv1.CampaignSent
	if err := protojson.Unmarshal(env.Data, &got); err != nil {
		t.Fatalf("payload: %v", err)
	}
	want := map[string]int32{"audience": 20, "sent": 16, "failed": 0, "skipped": 4}
	if diff := cmp.Diff(want, map[string]int32{"audience": got.GetAudience(), "sent": got.GetSent(), "failed": got.GetFailed(), "skipped": got.GetSkippedOptedOut()}); diff != "" {
		t.Errorf("campaign_sent counts (-want +got):\n%s", diff)
	}

	// A third run finds nothing to do.
	if err := second.SendOne(context.Background(), app.Ref{AccountID: acct, ID: c.ID}); err != nil {
		t.Fatalf("send after finish: %v", err)
	}
	var events int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox`).Scan(&events); err != nil || events != 1 {
		t.Errorf("after a repeated send: got %d events (%v), want 1", events, err)
	}
}

// gate holds every provider call until released and records the highest concurrency seen.
type gate struct {
	inner    sms.Provider
	release  chan struct{}
	mu       sync.Mutex
	inflight int
	max      int
}

func (g *gate) Send(ctx context.Context, m sms.Message) (sms.Sent, error) {
	g.mu.Lock()
	g.inflight++
	g.max = max(g.max, g.inflight)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.inflight--
		g.mu.Unlock()
	}()
	select {
	case <-g.release:
	case <-ctx.Done():
		return sms.Sent{}, ctx.Err()
	}
	return g.inner.Send(ctx, m)
}

func (g *gate) current() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inflight
}

// TestSendConcurrencyIsBounded: with Concurrency 3, three provider calls are in flight and
// never more.
func TestSendConcurrencyIsBounded(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	g := &gate{inner: sms.NewSandbox(pool), release: make(chan struct{})}
	sender := app.NewSender(store, audience(12), g, nopMetrics{}, logger, app.SenderConfig{Concurrency: 3})
	c := startCampaign(t, store, sender)
	errc := make(chan error, 1)
	go func() { errc <- sender.SendOne(context.Background(), app.Ref{AccountID: acct, ID: c.ID}) }()
	deadline := time.Now().Add(60 * time.Second)
	for g.current() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("got %d calls in flight, want 3", g.current())
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	close(g.release)
	if err := <-errc; err != nil {
		t.Fatalf("send: %v", err)
	}
	if g.max != 3 {
		t.Errorf("got at most %d calls in flight, want 3", g.max)
	}
	got, err := store.Get(context.Background(), acct, c.ID)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.State != domain.StateSent || got.Sent != 9 || got.Skipped != 3 {
		t.Errorf("got %s sent %d skipped %d, want SENT 9 3", got.State, got.Sent, got.Skipped)
	}
}

// TestProviderFailuresAreCounted: a provider refusal marks the recipient failed and the campaign
// still finishes.
func TestProviderFailuresAreCounted(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	aud := groups{"customers": {{ID: "a", Phone: "+15551230001"}, {ID: "b", Phone: "not-a-number"}, {ID: "c", Phone: "+15551230003", OptedOut: true}}}
	sender := app.NewSender(store, aud, sms.NewSandbox(pool), nopMetrics{}, logger, app.SenderConfig{})
	c := startCampaign(t, store, sender)
	if err := sender.SendOne(context.Background(), app.Ref{AccountID: acct, ID: c.ID}); err != nil {
		t.Fatalf("send: %v", err)
	}
	got, err := store.Get(context.Background(), acct, c.ID)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if diff := cmp.Diff([]int{3, 1, 1, 1}, []int{got.Audience, got.Sent, got.Failed, got.Skipped}); diff != "" {
		t.Errorf("audience/sent/failed/skipped (-want +got):\n%s", diff)
	}
	var errText string
	if err := pool.QueryRow(context.Background(), `SELECT error FROM recipients WHERE contact_id = 'b'`).Scan(&errText); err != nil || errText == "" {
		t.Errorf("failed recipient: got error text %q (%v), want the provider's reason", errText, err)
	}
}

// TestOptOutAfterResolutionIsHonoured: a contact who opts out after the audience was resolved
// is skipped, and one deleted meanwhile is counted as failed; neither is texted.
func TestOptOutAfterResolutionIsHonoured(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	aud := groups{"customers": {{ID: "a", Phone: "+15551230001"}, {ID: "b", Phone: "+15551230002"}, {ID: "c", Phone: "+15551230003"}}}
	contacts := changing{groups: aud, now: map[string]app.Contact{
		"b":         {ID: "b", Phone: "+15551230002", OptedOut: true},
		"deleted:c": {},
	}}
	sandbox := sms.NewSandbox(pool)
	sender := app.NewSender(store, contacts, sandbox, nopMetrics{}, logger, app.SenderConfig{})
	c := startCampaign(t, store, sender)
	if err := sender.SendOne(context.Background(), app.Ref{AccountID: acct, ID: c.ID}); err != nil {
		t.Fatalf("send: %v", err)
	}
	got, err := store.Get(context.Background(), acct, c.ID)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if diff := cmp.Diff([]int{3, 1, 1, 1}, []int{got.Audience, got.Sent, got.Failed, got.Skipped}); diff != "" {
		t.Errorf("audience/sent/failed/skipped (-want +got):\n%s", diff)
	}
	sent, err := sandbox.List(context.Background(), acct, "")
	if err != nil || len(sent) != 1 || sent[0].To != "+15551230001" {
		t.Errorf("got messages %+v (%v), want one to +15551230001", sent, err)
	}
}

// TestRunSendsEveryCampaignWithBoundedSlots: with one slot and no periodic scan, Run still
// sends every SENDING campaign (a freed slot wakes it) and returns once its context ends.
func TestRunSendsEveryCampaignWithBoundedSlots(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	sender := app.NewSender(store, audience(3), sms.NewSandbox(pool), nopMetrics{}, logger,
		app.SenderConfig{MaxCampaigns: 1, ScanInterval: time.Hour})
	var ids []string
	for range 3 {
		ids = append(ids, startCampaign(t, store, sender).ID)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sender.Run(ctx) }()
	deadline := time.Now().Add(60 * time.Second)
	for _, id := range ids {
		for {
			c, err := store.Get(context.Background(), acct, id)
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if c.State == domain.StateSent {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("campaign %s: got state %s, want SENT", id, c.State)
			}
			time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: got %v, want nil", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// TestEmptyAudience: a campaign to groups without members finishes at once with zero counts.
func TestEmptyAudience(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	sender := app.NewSender(store, groups{}, sms.NewSandbox(pool), nopMetrics{}, logger, app.SenderConfig{})
	c := startCampaign(t, store, sender)
	if err := sender.SendOne(context.Background(), app.Ref{AccountID: acct, ID: c.ID}); err != nil {
		t.Fatalf("send: %v", err)
	}
	got, err := store.Get(context.Background(), acct, c.ID)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.State != domain.StateSent || got.Audience != 0 || got.FinishTime.Before(got.StartTime) {
		t.Errorf("got %s audience %d start %v finish %v, want SENT with 0 and ordered times", got.State, got.Audience, got.StartTime, got.FinishTime)
	}
	var events int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox`).Scan(&events); err != nil || events != 1 {
		t.Errorf("got %d events (%v), want one campaign_sent", events, err)
	}
}

// failing refuses every send to one number with a transient error, and counts calls.
type failing struct {
	inner sms.Provider
	to    string
	calls atomic.Int32
}

func (f *failing) Send(ctx context.Context, m sms.Message) (sms.Sent, error) {
	if m.To == f.to {
		f.calls.Add(1)
		return sms.Sent{}, errors.New("carrier timeout")
	}
	return f.inner.Send(ctx, m)
}

// TestTransientProviderErrorsAreRetried: a transient error is retried a bounded number of times
// and then counts as failed; a refused message is not retried.
func TestTransientProviderErrorsAreRetried(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	aud := groups{"customers": {{ID: "a", Phone: "+15551230001"}, {ID: "b", Phone: "+15551230002"}, {ID: "c", Phone: "bad"}}}
	p := &failing{inner: sms.NewSandbox(pool), to: "+15551230002"}
	sender := app.NewSender(store, aud, p, nopMetrics{}, logger, app.SenderConfig{})
	c := startCampaign(t, store, sender)
	if err := sender.SendOne(context.Background(), app.Ref{AccountID: acct, ID: c.ID}); err != nil {
		t.Fatalf("send: %v", err)
	}
	if n := p.calls.Load(); n != 3 {
		t.Errorf("got %d calls for the failing number, want 3", n)
	}
	got, err := store.Get(context.Background(), acct, c.ID)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if diff := cmp.Diff([]int{3, 1, 2, 0}, []int{got.Audience, got.Sent, got.Failed, got.Skipped}); diff != "" {
		t.Errorf("audience/sent/failed/skipped (-want +got):\n%s", diff)
	}
}
