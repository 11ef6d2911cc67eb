package worker

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestThrottleAdjust(t *testing.T) {
	ms := time.Millisecond
	late := []time.Duration{80 * ms}
	tests := []struct {
		name string
		// the ages observed in each interval, then Adjust
		intervals [][]time.Duration
		want      []int
	}{
		{
			name:      "more than 5 % late: cut by 30 % down to min",
			intervals: [][]time.Duration{late, late, late, late, late},
			want:      []int{16, 11, 7, 4, 4},
		},
		{
			name:      "on time: grows by an eighth, at least one, up to max",
			intervals: [][]time.Duration{late, late, late, late, {10 * ms}, {10 * ms}, {10 * ms}, {10 * ms}},
			want:      []int{16, 11, 7, 4, 5, 6, 7, 8},
		},
		{
			name:      "idle default lane: doubles up to max",
			intervals: [][]time.Duration{late, late, late, late, nil, nil, nil},
			want:      []int{16, 11, 7, 4, 8, 16, 24},
		},
		{
			name:      "exactly 5 % late is on time, more is not",
			intervals: [][]time.Duration{late, append(repeat(10*ms, 19), 60*ms), append(repeat(10*ms, 18), 60*ms, 60*ms)},
			want:      []int{16, 18, 12},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var told []int
			th := NewThrottle(ThrottleConfig{Target: 50 * ms, Min: 4, Max: 24}, func(n int) { told = append(told, n) })
			var got []int
			for _, ages := range tt.intervals {
				for _, a := range ages {
					th.Observe(a)
				}
				got = append(got, th.Adjust())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("limits (-want +got):\n%s", diff)
			}
			if told[0] != 24 || told[len(told)-1] != th.Limit() {
				t.Errorf("onLimit was told %v; want it to start at 24 and end at the limit %d", told, th.Limit())
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestThrottlePermits(t *testing.T) {
	th := NewThrottle(ThrottleConfig{Target: time.Millisecond, Min: 1, Max: 2}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !th.TryAcquire() || !th.TryAcquire() {
		t.Fatal("two permits of a limit of 2 should be free")
	}
	if th.TryAcquire() {
		t.Fatal("a third permit was granted over the limit")
	}
	got := make(chan error, 1)
	go func() { got <- th.Acquire(ctx) }()
	select {
	case err := <-got:
		t.Fatalf("Acquire returned %v while the limit was used up", err)
	case <-time.After(20 * time.Millisecond): // still waiting, as it should
	}
	th.Release()
	if err := <-got; err != nil {
		t.Fatalf("Acquire after a Release: %v", err)
	}

	// A cut below what is in use grants nothing until enough permits come back.
	th.Observe(time.Second)
	if l := th.Adjust(); l != 1 {
		t.Fatalf("limit after a late interval: %d, want 1", l)
	}
	th.Release()
	if th.TryAcquire() {
		t.Fatal("a permit was granted with 1 in use and a limit of 1")
	}
	th.Release()
	if !th.TryAcquire() {
		t.Fatal("no permit with none in use")
	}

	// Acquire gives up when its context ends.
	short, cancelShort := context.WithCancel(ctx)
	cancelShort()
	if err := th.Acquire(short); err == nil {
		t.Fatal("Acquire with an ended context and no free permit succeeded")
	}

	// Raising the limit wakes a waiter.
	go func() { got <- th.Acquire(ctx) }()
	th.Adjust() // on time: 1 → 2
	if err := <-got; err != nil {
		t.Fatalf("Acquire after the limit rose: %v", err)
	}
}
