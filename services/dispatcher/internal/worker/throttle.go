package worker

import (
	"context"
	"sync"
	"time"
)

// ThrottleConfig tunes a Throttle; zero values take the defaults.
type ThrottleConfig struct {
	// Target is how late the default lane's first attempts may be picked up after their event
	// occurred (default 50 ms). More than 5 % later than this in an interval cuts the limit.
	Target time.Duration
	// Min and Max bound the limit (defaults 4 and 256). Min keeps the bulk lane moving even
	// while the default lane is late for reasons of its own.
	Min, Max int
	// Interval between adjustments (default 250 ms).
	Interval time.Duration
}

// Throttle is the bulk lane's adaptive concurrency limit: the bulk lane is a scavenger that
// takes whatever capacity the default lane leaves, and gives it back as soon as the default
// lane's jobs arrive late. Every Interval the limit is cut by 30 % when more than 5 % of the
// default lane's first attempts in that interval were picked up more than Target after their
// event occurred, raised by an eighth (at least 1) when they were on time, and
// doubled when the default lane had none, within [Min, Max] (additive increase, multiplicative
// decrease, as TCP does with a congested link).
//
// The signal is the whole way of an API call's event before its webhook is sent: the producer's
// commit, the outbox relay, EVENTS, the fan-out and the queue, every hop that a burst slows down
// by taking the machine's CPU or PostgreSQL (events written in bulk are left out: the relay paces
// them on purpose). The lever is the work this replica does for the bulk lane, which is the one
// part of the load that can wait. Each replica throttles its own bulk lane on what its own
// workers see, so it holds with any number of replicas.
type Throttle struct {
	cfg     ThrottleConfig
	onLimit func(int)

	mu         sync.Mutex
	limit      int
	inUse      int
	changed    chan struct{} // closed and replaced when a permit may have become free
	seen, late int
}

// NewThrottle returns a throttle starting at Max; onLimit (may be nil) is told every new limit.
func NewThrottle(cfg ThrottleConfig, onLimit func(int)) *Throttle {
	if cfg.Target <= 0 {
		cfg.Target = 50 * time.Millisecond
	}
	if cfg.Max <= 0 {
		cfg.Max = 256
	}
	if cfg.Min <= 0 {
		cfg.Min = 4
	}
	cfg.Min = min(cfg.Min, cfg.Max)
	if cfg.Interval <= 0 {
		cfg.Interval = 250 * time.Millisecond
	}
	if onLimit == nil {
		onLimit = func(int) {}
	}
	t := &Throttle{cfg: cfg, onLimit: onLimit, limit: cfg.Max, changed: make(chan struct{})}
	onLimit(t.limit)
	return t
}

// Observe records how long after its event occurred a default-lane first attempt was picked up.
func (t *Throttle) Observe(age time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seen++
	if age > t.cfg.Target {
		t.late++
	}
}

// Run adjusts the limit every Interval until ctx ends.
func (t *Throttle) Run(ctx context.Context) {
	tick := time.NewTicker(t.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.Adjust()
		}
	}
}

// Adjust closes one interval: it cuts or raises the limit from the observations since the last
// call, and returns the new limit.
func (t *Throttle) Adjust() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.limit
	switch {
	case t.late*20 > t.seen:
		t.limit = max(t.cfg.Min, t.limit*7/10)
	case t.seen == 0: // the default lane is idle: nobody to make room for
		t.limit = min(t.cfg.Max, t.limit*2)
	default:
		t.limit = min(t.cfg.Max, t.limit+max(1, t.limit/8))
	}
	t.seen, t.late = 0, 0
	if t.limit != old {
		t.onLimit(t.limit)
		if t.limit > old {
			t.wakeLocked()
		}
	}
	return t.limit
}

// Limit is the current limit.
func (t *Throttle) Limit() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.limit
}

// Acquire waits for a permit; it fails only when ctx ends.
func (t *Throttle) Acquire(ctx context.Context) error {
	for {
		t.mu.Lock()
		if t.inUse < t.limit {
			t.inUse++
			t.mu.Unlock()
			return nil
		}
		changed := t.changed
		t.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// TryAcquire takes a permit if one is free.
func (t *Throttle) TryAcquire() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.inUse < t.limit {
		t.inUse++
		return true
	}
	return false
}

// Release gives a permit back.
func (t *Throttle) Release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inUse--
	t.wakeLocked()
}

func (t *Throttle) wakeLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}
