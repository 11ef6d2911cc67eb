package endpoint

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func yes() bool { return true }

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestGuard(cfg Config) (*Guard, *clock) {
	g := New(cfg)
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	g.now = c.now
	g.rnd = func() float64 { return 0.5 }
	return g, c
}

func mustAcquire(t *testing.T, g *Guard, host string) Permit {
	t.Helper()
	p, ok, _, reason := g.Acquire(context.Background(), host, yes)
	if !ok {
		t.Fatalf("acquire %s: refused (%s), want granted", host, reason)
	}
	return p
}

func TestCapRefusesBeyondMaxConcurrent(t *testing.T) {
	t.Parallel()
	g, clk := newTestGuard(Config{MaxConcurrent: 2, MaxWaiting: 2, BusyWait: time.Millisecond})
	p1 := mustAcquire(t, g, "a:443")
	mustAcquire(t, g, "a:443")
	_, ok, wait, reason := g.Acquire(context.Background(), "a:443", yes)
	if ok || reason != ReasonEndpointBusy {
		t.Fatalf("third acquire: got ok=%v reason=%q, want refused %q", ok, reason, ReasonEndpointBusy)
	}
	if wait < scheduleTick {
		t.Errorf("busy delay: got %s, want >= %s", wait, scheduleTick)
	}
	// A caller that may not wait is refused at once.
	if _, ok, _, reason := g.Acquire(context.Background(), "a:443", func() bool { return false }); ok || reason != ReasonEndpointBusy {
		t.Fatalf("acquire without waiting: got ok=%v reason=%q, want refused %q", ok, reason, ReasonEndpointBusy)
	}
	// Another endpoint is unaffected.
	mustAcquire(t, g, "b:443")
	clk.advance(time.Second)
	p1.Done(false) // took 1s: the endpoint absorbs 2 requests a second
	mustAcquire(t, g, "a:443")

	// Deferred jobs are paced at that rate, not sent back all at once.
	var last time.Duration
	for i := range 5 {
		_, ok, wait, _ := g.Acquire(context.Background(), "a:443", nil)
		if ok {
			t.Fatalf("deferral %d: granted, want refused", i)
		}
		if i > 0 && wait-last != 500*time.Millisecond {
			t.Errorf("deferral %d: spacing got %s, want 500ms", i, wait-last)
		}
		last = wait
	}
}

func TestWaiterGetsReleasedSlot(t *testing.T) {
	defer goleak.VerifyNone(t)
	g, _ := newTestGuard(Config{MaxConcurrent: 1, BusyWait: time.Minute})
	p := mustAcquire(t, g, "a:443")
	got := make(chan bool, 1)
	go func() {
		p2, ok, _, _ := g.Acquire(context.Background(), "a:443", yes)
		if ok {
			p2.Done(false)
		}
		got <- ok
	}()
	// Release only once the waiter is registered.
	deadline := time.Now().Add(30 * time.Second)
	for {
		g.mu.Lock()
		w := g.hosts["a:443"].waiting
		g.mu.Unlock()
		if w == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("waiter never registered")
		}
		time.Sleep(time.Millisecond)
	}
	p.Done(false)
	if ok := <-got; !ok {
		t.Errorf("waiter: got refused, want the released slot")
	}
}

func TestWaiterGivesUpWhenContextEnds(t *testing.T) {
	defer goleak.VerifyNone(t)
	g, _ := newTestGuard(Config{MaxConcurrent: 1, BusyWait: time.Minute})
	mustAcquire(t, g, "a:443")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, ok, _, reason := g.Acquire(ctx, "a:443", yes)
	if ok || reason != ReasonEndpointBusy {
		t.Errorf("got ok=%v reason=%q, want refused %q", ok, reason, ReasonEndpointBusy)
	}
}

func TestCircuitBreaker(t *testing.T) {
	t.Parallel()
	const host = "hooks.example.com:443"
	g, clk := newTestGuard(Config{FailureThreshold: 3, OpenFor: 10 * time.Second, MaxOpenFor: 30 * time.Second})

	// Failures interrupted by a success do not open the circuit.
	for _, unhealthy := range []bool{true, true, false, true, true} {
		mustAcquire(t, g, host).Done(unhealthy)
	}
	if n := g.OpenCircuits(); n != 0 {
		t.Fatalf("open circuits after interrupted failures: got %d, want 0", n)
	}
	mustAcquire(t, g, host).Done(true) // third consecutive
	if n := g.OpenCircuits(); n != 1 {
		t.Fatalf("open circuits: got %d, want 1", n)
	}

	steps := []struct {
		name       string
		advance    time.Duration
		wantOK     bool
		wantReason string
		// minWait bounds the reschedule delay of a refused job.
		minWait time.Duration
		done    *bool // result of the granted request, nil: keep it in flight
	}{
		{name: "open: rescheduled until the probe time", wantReason: ReasonCircuitOpen, minWait: 10 * time.Second},
		{name: "still open", advance: 5 * time.Second, wantReason: ReasonCircuitOpen, minWait: 5 * time.Second},
		{name: "half-open lets one probe through", advance: 5 * time.Second, wantOK: true},
		{name: "a second request while probing is rescheduled", wantReason: ReasonCircuitOpen, minWait: time.Second},
	}
	var probe Permit
	for _, st := range steps {
		clk.advance(st.advance)
		p, ok, wait, reason := g.Acquire(context.Background(), host, yes)
		if ok != st.wantOK || reason != st.wantReason {
			t.Fatalf("%s: got ok=%v reason=%q, want ok=%v reason=%q", st.name, ok, reason, st.wantOK, st.wantReason)
		}
		if !ok && wait < st.minWait {
			t.Errorf("%s: wait got %s, want >= %s", st.name, wait, st.minWait)
		}
		if ok {
			probe = p
		}
	}
	// The probe fails: open again for twice as long.
	probe.Done(true)
	_, ok, wait, _ := g.Acquire(context.Background(), host, yes)
	if ok || wait < 20*time.Second {
		t.Fatalf("after a failed probe: got ok=%v wait=%s, want refused for >= 20s", ok, wait)
	}
	clk.advance(20 * time.Second)
	mustAcquire(t, g, host).Done(false) // the probe succeeds
	if n := g.OpenCircuits(); n != 0 {
		t.Fatalf("open circuits after a successful probe: got %d, want 0", n)
	}
	for range 5 {
		mustAcquire(t, g, host).Done(false)
	}
}
