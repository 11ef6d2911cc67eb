package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/customertext/webhooks/e2e/chaos"
)

// session is one scenario's run: its platform, its clock and what went wrong.
type session struct {
	p     *chaos.Platform
	short bool
	out   io.Writer
	began time.Time

	// healed is when the scenario's last fault was undone and its load stopped: the drain is
	// measured from there.
	healed time.Time
	// idleWait bounds the wait for every consumer's backlog to reach zero after the drain
	// (default 35 s: a killed dispatcher's events come back after the fan-out's 30 s AckWait).
	idleWait time.Duration
	stopLoad []func()
	failures []string
}

// d picks a duration of the short or the full form.
func (s *session) d(short, full time.Duration) time.Duration {
	if s.short {
		return short
	}
	return full
}

// rate is the contacts per second of the steady load.
func (s *session) rate() int {
	if s.short {
		return 30
	}
	return 50
}

func (s *session) logf(format string, args ...any) {
	fmt.Fprintf(s.out, "  [%5.1fs] %s\n", time.Since(s.began).Seconds(), fmt.Sprintf(format, args...))
}

func (s *session) fail(format string, args ...any) {
	s.failures = append(s.failures, fmt.Sprintf(format, args...))
}

// sleep waits d (the scenario's own pacing: a fault that lasts d), or until ctx ends.
func (s *session) sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// load creates contacts in a at rate per second in the background until stopped.
func (s *session) load(ctx context.Context, a *chaos.Account, rate int) {
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.p.Producer.Run(lctx, a, rate)
	}()
	s.stopLoad = append(s.stopLoad, func() { cancel(); <-done })
}

// stop ends every load and marks the start of the drain.
func (s *session) stop() {
	for _, f := range s.stopLoad {
		f()
	}
	s.stopLoad = nil
	s.healed = time.Now()
	s.logf("load stopped: %d contacts created, %d events", s.p.Producer.Created(), s.p.Producer.Events())
}

// account creates an account with a webhook on each named ledger endpoint.
func (s *session) account(ctx context.Context, name string, endpoints ...string) (*chaos.Account, []*chaos.Webhook, error) {
	a, err := s.p.NewAccount(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	var hooks []*chaos.Webhook
	for _, e := range endpoints {
		w, err := s.p.AddWebhook(ctx, a, e)
		if err != nil {
			return nil, nil, err
		}
		hooks = append(hooks, w)
	}
	return a, hooks, nil
}

// finish drains and checks: nothing lost, no duplicate under another webhook-id, every
// signature valid, every consumer's backlog back to zero, no process died on its own and every
// live one is ready.
func (s *session) finish(ctx context.Context) result {
	if s.stopLoad != nil || s.healed.IsZero() {
		s.stop()
	}
	// The full form's longest legitimate drain is endpoint-500's: the circuit's probes back off
	// to about 2 minutes during a 3-minute outage, and deferred jobs spread over one more period.
	t := s.p.WaitDelivered(ctx, s.d(45*time.Second, 6*time.Minute))
	r := result{tally: t, drain: time.Since(s.healed)}
	if t.Lost > 0 {
		s.fail("%d of %d deliveries lost after a drain of %s (e.g. %v)", t.Lost, t.Produced, r.drain.Round(time.Second), t.LostSample)
	}
	if t.Produced == 0 {
		s.fail("nothing was produced")
	}
	if t.DuplicatesOtherID > 0 {
		s.fail("%d duplicates under another webhook-id", t.DuplicatesOtherID)
	}
	if t.BadSignatures > 0 {
		s.fail("%d requests with an invalid signature", t.BadSignatures)
	}
	if s.idleWait == 0 {
		s.idleWait = 35 * time.Second
	}
	if err := s.p.WaitIdle(ctx, s.idleWait); err != nil {
		s.fail("%v", err)
	}
	// Last: a poison message may take a second replica down only after an AckWait.
	if crashed := s.p.Crashed(); len(crashed) > 0 {
		s.fail("processes exited on their own: %v", crashed)
	}
	if stuck := s.p.NotReady(ctx, 10*time.Second); len(stuck) > 0 {
		s.fail("processes alive but not ready: %v", stuck)
	}
	if f := s.p.Producer.Failures(); f != "" {
		s.logf("CreateContact calls that failed: %s", f)
	}
	r.failures = s.failures
	return r
}
