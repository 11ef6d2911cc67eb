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
// other accounts. The measurement is per replica.
type Fairness struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds memory; full (idle) buckets are forgotten when it is reached.
const maxBuckets = 100_000

// NewFairness returns a picker allowing rate jobs per second per account with the given burst.
func NewFairness(rate float64, burst int) *Fairness {
	return &Fairness{rate: rate, burst: float64(burst), now: time.Now, buckets: map[string]*bucket{}}
}

// Lane implements LanePicker.
func (f *Fairness) Lane(accountID string, jobs int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	b := f.buckets[accountID]
	if b == nil {
		if len(f.buckets) >= maxBuckets {
			f.forgetIdle(now)
		}
		b = &bucket{tokens: f.burst, last: now}
		f.buckets[accountID] = b
	}
	b.tokens = min(f.burst, b.tokens+now.Sub(b.last).Seconds()*f.rate)
	b.last = now
	if b.tokens >= float64(jobs) {
		b.tokens -= float64(jobs)
		return DefaultLane
	}
	return BulkLane
}

func (f *Fairness) forgetIdle(now time.Time) {
	for id, b := range f.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*f.rate >= f.burst {
			delete(f.buckets, id)
		}
	}
}
