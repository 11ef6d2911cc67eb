// Package retry decides when a failed delivery is attempted again: the schedule of the delivery
// contract with jitter, Retry-After honoured within bounds, and the point where a delivery is
// dead-lettered.
package retry

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// DefaultSchedule is the delay before each attempt: the first is immediate, then 5 s, 5 min,
// 30 min, 2 h, 5 h, 10 h and 10 h. Eight attempts in all.
var DefaultSchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// Bounds applied to a Retry-After header.
const (
	MinRetryAfter = time.Second
	MaxRetryAfter = time.Hour
)

// Policy computes retry delays. The zero value is not usable; build one with New.
type Policy struct {
	schedule []time.Duration
	jitter   float64
	rnd      func() float64
}

// New returns a policy over schedule (delay before attempt i+1 at index i; index 0 is ignored)
// with ±jitter (0.2 for ±20 %). rnd returns values in [0, 1); nil uses math/rand.
func New(schedule []time.Duration, jitter float64, rnd func() float64) (Policy, error) {
	if len(schedule) < 1 {
		return Policy{}, errors.New("retry policy: the schedule needs at least one attempt")
	}
	for i, d := range schedule {
		if d < 0 {
			return Policy{}, fmt.Errorf("retry policy: delay %d is negative", i)
		}
	}
	if jitter < 0 || jitter >= 1 {
		return Policy{}, fmt.Errorf("retry policy: jitter %v outside [0, 1)", jitter)
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	return Policy{schedule: append([]time.Duration(nil), schedule...), jitter: jitter, rnd: rnd}, nil
}

// MaxAttempts is the number of attempts before a delivery is dead-lettered.
func (p Policy) MaxAttempts() int { return len(p.schedule) }

// Next returns the delay before the attempt after the failed one (1-based), or ok=false when
// the failed attempt was the last. A positive retryAfter (from a 429 or 503) replaces the
// scheduled delay, clamped to [MinRetryAfter, MaxRetryAfter].
func (p Policy) Next(failedAttempt int, retryAfter time.Duration) (delay time.Duration, ok bool) {
	if failedAttempt < 1 {
		failedAttempt = 1
	}
	if failedAttempt >= len(p.schedule) {
		return 0, false
	}
	if retryAfter > 0 {
		return min(max(retryAfter, MinRetryAfter), MaxRetryAfter), true
	}
	d := p.schedule[failedAttempt]
	if p.jitter > 0 && d > 0 {
		f := 1 + p.jitter*(2*p.rnd()-1)
		d = time.Duration(float64(d) * f)
	}
	return d, true
}

// ParseSchedule reads a comma-separated list of Go durations ("0s,5s,5m").
func ParseSchedule(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil {
			return nil, fmt.Errorf("parse retry schedule entry %q: %w", f, err)
		}
		if d < 0 {
			return nil, fmt.Errorf("parse retry schedule entry %q: negative", f)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, errors.New("parse retry schedule: empty")
	}
	return out, nil
}
