// Package endpoint protects customers' endpoints and the dispatcher's capacity from each other:
// a cap on concurrent requests per endpoint (a webhook URL: scheme, host and path) and a circuit
// breaker per endpoint. A job that may not go now is told how long to wait; the caller
// reschedules it instead of holding a worker slot.
package endpoint

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Config tunes a Guard; zero values take the defaults.
type Config struct {
	// MaxConcurrent requests per endpoint; default 32.
	MaxConcurrent int
	// FailureThreshold consecutive failures (with no success in between) open the circuit;
	// default 5.
	FailureThreshold int
	// OpenFor is how long a circuit stays open before a probe; it doubles after each failed
	// probe up to MaxOpenFor. Defaults 10 s and 5 min.
	OpenFor    time.Duration
	MaxOpenFor time.Duration
	// BusyWait is how long a job may wait for a slot of an endpoint at its cap before it is
	// rescheduled; default 5 s. At most MaxWaiting jobs wait per endpoint (default
	// 4×MaxConcurrent), and only with the caller's consent (see Acquire).
	BusyWait   time.Duration
	MaxWaiting int
}

// scheduleTick is how coarsely nats-server fires message schedules (it runs its timer at most
// every 250 ms): deferred jobs come back in bursts of one tick.
const scheduleTick = 250 * time.Millisecond

// Reasons a job is deferred.
const (
	ReasonCircuitOpen  = "circuit_open"
	ReasonEndpointBusy = "endpoint_busy"
)

// Guard tracks every endpoint this replica talks to. It is safe for concurrent use.
type Guard struct {
	cfg   Config
	mu    sync.Mutex
	hosts map[string]*state
	now   func() time.Time
	rnd   func() float64
}

type state struct {
	inFlight  int
	failures  int
	open      bool
	openFor   time.Duration
	openUntil time.Time
	probing   bool
	waiting   int
	// avgDur is a moving average of request durations; deferTail is when the last job deferred
	// for this busy endpoint is due. Together they pace deferred jobs at the endpoint's rate.
	avgDur    time.Duration
	deferTail time.Time
	// freed is closed (and replaced) whenever a slot is released.
	freed chan struct{}
}

// New returns a Guard.
func New(cfg Config) *Guard {
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 32
	}
	if cfg.FailureThreshold <= 0 {
		cfg.FailureThreshold = 5
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = 10 * time.Second
	}
	if cfg.MaxOpenFor < cfg.OpenFor {
		cfg.MaxOpenFor = max(5*time.Minute, cfg.OpenFor)
	}
	if cfg.BusyWait <= 0 {
		cfg.BusyWait = 5 * time.Second
	}
	if cfg.MaxWaiting <= 0 {
		cfg.MaxWaiting = 4 * cfg.MaxConcurrent
	}
	return &Guard{cfg: cfg, hosts: map[string]*state{}, now: time.Now, rnd: rand.Float64}
}

// Permit is a granted request slot; call Done exactly once with the result.
type Permit struct {
	g     *Guard
	host  string
	probe bool
	start time.Time
}

// Acquire asks to send a request to host. When the endpoint is at its cap it may wait up to
// BusyWait for a slot: mayWait is called (without locks held) just before the first wait and
// can refuse it (nil always refuses); the worker uses it to give back its worker slot, so jobs
// waiting for a busy endpoint never hold capacity other endpoints need. When refused, wait is
// how long the job should be rescheduled for and reason says why.
func (g *Guard) Acquire(ctx context.Context, host string, mayWait func() bool) (p Permit, ok bool, wait time.Duration, reason string) {
	var deadline <-chan time.Time
	waited := false
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		p, ok, wait, reason, freed := g.tryLocked(host, waited)
		if ok || reason != ReasonEndpointBusy || freed == nil {
			if waited {
				g.hosts[host].waiting--
			}
			return p, ok, wait, reason
		}
		if !waited {
			g.hosts[host].waiting++
			waited = true
			g.mu.Unlock()
			if mayWait == nil || !mayWait() {
				g.mu.Lock()
				g.hosts[host].waiting--
				return Permit{}, false, g.busyDelayLocked(host), reason
			}
			t := time.NewTimer(g.cfg.BusyWait)
			defer t.Stop()
			deadline = t.C
			g.mu.Lock()
			continue // the slot may have been freed meanwhile
		}
		g.mu.Unlock()
		select {
		case <-freed:
			g.mu.Lock()
			continue
		case <-deadline:
		case <-ctx.Done():
		}
		g.mu.Lock()
		g.hosts[host].waiting--
		return Permit{}, false, g.busyDelayLocked(host), ReasonEndpointBusy
	}
}

// tryLocked grants a slot or says why not; freed is non-nil when waiting for a slot may help.
func (g *Guard) tryLocked(host string, waiter bool) (p Permit, ok bool, wait time.Duration, reason string, freed chan struct{}) {
	now := g.now()
	s := g.hosts[host]
	if s == nil {
		s = &state{freed: make(chan struct{})}
		g.hosts[host] = s
	}
	probe := false
	if s.open {
		if now.Before(s.openUntil) || s.probing {
			// Spread the waiting jobs over one open period after the probe time, so a recovered
			// endpoint is not hit by all of them at once.
			wait = max(s.openUntil.Sub(now), 0) + time.Duration(g.rnd()*float64(s.openFor))
			return Permit{}, false, max(wait, time.Second), ReasonCircuitOpen, nil
		}
		// Half-open: exactly one probe.
		probe = true
	}
	if s.inFlight >= g.cfg.MaxConcurrent {
		if !waiter && s.waiting >= g.cfg.MaxWaiting {
			return Permit{}, false, g.busyDelayLocked(host), ReasonEndpointBusy, nil
		}
		return Permit{}, false, 0, ReasonEndpointBusy, s.freed
	}
	if probe {
		s.probing = true
	}
	s.inFlight++
	return Permit{g: g, host: host, probe: probe, start: now}, true, 0, "", nil
}

// busyDelayLocked books the next place in the endpoint's queue of deferred jobs: jobs are
// spaced by what the endpoint absorbs (MaxConcurrent requests per average duration, and no
// more than the local slots and waiters can take per schedule tick), so they come back when
// there is room instead of all at once.
func (g *Guard) busyDelayLocked(host string) time.Duration {
	s := g.hosts[host]
	now := g.now()
	perJob := scheduleTick / time.Duration(g.cfg.MaxConcurrent+g.cfg.MaxWaiting)
	if s.avgDur > 0 {
		perJob = max(perJob, s.avgDur/time.Duration(g.cfg.MaxConcurrent))
	}
	at := now.Add(scheduleTick)
	if s.deferTail.After(at) {
		at = s.deferTail
	}
	if limit := now.Add(g.cfg.MaxOpenFor); at.After(limit) {
		at = limit
	}
	s.deferTail = at.Add(perJob)
	return at.Sub(now)
}

// Done releases the slot and feeds the breaker. unhealthy is true for failures that say the
// endpoint itself is in trouble (no response, timeout, 5xx, 429); a 4xx answer is the
// endpoint's opinion of one request and leaves the breaker alone.
func (p Permit) Done(unhealthy bool) {
	g := p.g
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.hosts[p.host]
	if s == nil {
		return
	}
	s.inFlight--
	if d := g.now().Sub(p.start); s.avgDur == 0 {
		s.avgDur = d
	} else {
		s.avgDur += (d - s.avgDur) / 5
	}
	close(s.freed)
	s.freed = make(chan struct{})
	if p.probe {
		s.probing = false
	}
	switch {
	case !unhealthy:
		s.failures = 0
		s.open = false
		s.openFor = 0
	case s.open && p.probe:
		s.openFor = min(2*s.openFor, g.cfg.MaxOpenFor)
		s.openUntil = g.now().Add(s.openFor)
	case s.open:
		// A request admitted before the circuit opened; already counted.
	default:
		s.failures++
		if s.failures >= g.cfg.FailureThreshold {
			s.open = true
			s.openFor = g.cfg.OpenFor
			s.openUntil = g.now().Add(s.openFor)
		}
	}
	if s.inFlight == 0 && s.waiting == 0 && !s.open && s.failures == 0 && !s.deferTail.After(g.now()) {
		delete(g.hosts, p.host) // forget healthy idle endpoints
	}
}

// OpenCircuits counts endpoints whose circuit is open or half-open.
func (g *Guard) OpenCircuits() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, s := range g.hosts {
		if s.open {
			n++
		}
	}
	return n
}
