// Package peers counts the live dispatcher replicas: each one publishes a heartbeat with its id
// on a core NATS subject and listens for the others'. A replica that misses three heartbeats is
// no longer counted. Nothing is stored: after a restart the count is right within one interval.
package peers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Peers tracks the replicas heard from recently, this one included.
type Peers struct {
	nc       *nats.Conn
	subject  string
	id       string
	interval time.Duration
	now      func() time.Time
	onCount  func(int)

	mu   sync.Mutex
	seen map[string]time.Time
}

// New returns a tracker for replica id heartbeating on subject every interval; onCount (may be
// nil) is told the count whenever it changes.
func New(nc *nats.Conn, subject, id string, interval time.Duration, onCount func(int)) *Peers {
	if onCount == nil {
		onCount = func(int) {}
	}
	return &Peers{nc: nc, subject: subject, id: id, interval: interval, now: time.Now, onCount: onCount,
		seen: map[string]time.Time{}}
}

// Count is the number of replicas heard from within three intervals, at least 1 (this one).
func (p *Peers) Count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.countLocked()
}

func (p *Peers) countLocked() int {
	n := 1
	cutoff := p.now().Add(-3 * p.interval)
	for id, at := range p.seen {
		if id != p.id && at.After(cutoff) {
			n++
		}
	}
	return n
}

// Run heartbeats and listens until ctx ends.
func (p *Peers) Run(ctx context.Context) error {
	sub, err := p.nc.Subscribe(p.subject, func(m *nats.Msg) { p.heard(string(m.Data)) })
	if err != nil {
		return fmt.Errorf("peers: subscribe: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	t := time.NewTicker(p.interval)
	defer t.Stop()
	last := 1
	p.onCount(last)
	for {
		// A failed heartbeat (NATS away) is simply missed; the next one is on its way.
		_ = p.nc.Publish(p.subject, []byte(p.id))
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		p.mu.Lock()
		cutoff := p.now().Add(-3 * p.interval)
		for id, at := range p.seen {
			if !at.After(cutoff) {
				delete(p.seen, id)
			}
		}
		n := p.countLocked()
		p.mu.Unlock()
		if n != last {
			last = n
			p.onCount(n)
		}
	}
}

func (p *Peers) heard(id string) {
	if id == "" || len(id) > 200 {
		return // not a heartbeat of ours
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.seen[id]; !ok && len(p.seen) >= 10_000 {
		return // garbage on the subject must not grow memory without bound
	}
	p.seen[id] = p.now()
}
