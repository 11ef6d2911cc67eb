package fanout

import (
	"sync"
	"time"
)

// BulkLane carries the jobs of an account over its fair share.
const BulkLane = "bulk"

// Fairness measures each account's job rate at fan-out with a token bucket: jobs within the
// account's share go to the default lane, the rest to the bulk lane, which workers serve only
// after the default lane. One account's burst therefore queues behind itself, not in front of
// other accounts. Each replica sees its share of the events (the fan-out consumer is shared), so
// the rate and burst are divided by the number of live replicas: the share is an account's across
// the whole pipeline, whatever the number of replicas.
type Fairness struct {
	rate     float64
	burst    float64
	replicas func() int
	now      func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds memory; full (idle) buckets are forgotten when it is reached.
const maxBuckets = 100_000

// NewFairness returns a picker allowing rate jobs per second per account with the given burst,
// shared among replicas() replicas (nil: this one alone).
func NewFairness(rate float64, burst int, replicas func() int) *Fairness {
	if replicas == nil {
		replicas = func() int { return 1 }
	}
	return &Fairness{rate: rate, burst: float64(burst), replicas: replicas, now: time.Now, buckets: map[string]*bucket{}}
}

// Lane implements LanePicker.
func (f *Fairness) Lane(accountID string, jobs int) string {
	n := float64(max(1, f.replicas()))
	rate, burst := f.rate/n, f.burst/n
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	b := f.buckets[accountID]
	if b == nil {
		if len(f.buckets) >= maxBuckets {
			f.forgetIdle(now, rate, burst)
		}
		b = &bucket{tokens: burst, last: now}
		f.buckets[accountID] = b
	}
	b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.tokens >= float64(jobs) {
		b.tokens -= float64(jobs)
		return DefaultLane
	}
	return BulkLane
}

func (f *Fairness) forgetIdle(now time.Time, rate, burst float64) {
	for id, b := range f.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*rate >= burst {
			delete(f.buckets, id)
		}
	}
}
