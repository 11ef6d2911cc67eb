package retry

import (
	"slices"
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		rnd        float64
		failed     int
		retryAfter time.Duration
		want       time.Duration
		wantOK     bool
	}{
		{"after the first attempt: 5s", 0.5, 1, 0, 5 * time.Second, true},
		{"after the second: 5m", 0.5, 2, 0, 5 * time.Minute, true},
		{"jitter low edge: -20%", 0, 3, 0, 24 * time.Minute, true},
		{"jitter high edge: +20%", 1, 4, 0, 144 * time.Minute, true},
		{"before the last attempt: 10h", 0.5, 7, 0, 10 * time.Hour, true},
		{"after the last attempt: dead letter", 0.5, 8, 0, 0, false},
		{"Retry-After replaces the schedule", 0.5, 1, 90 * time.Second, 90 * time.Second, true},
		{"Retry-After raised to 1s", 0.5, 1, time.Millisecond, time.Second, true},
		{"Retry-After capped at 1h", 0.5, 1, 48 * time.Hour, time.Hour, true},
		{"Retry-After cannot extend the attempts", 0.5, 8, time.Minute, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(DefaultSchedule, 0.2, func() float64 { return tc.rnd })
			if err != nil {
				t.Fatal(err)
			}
			got, ok := p.Next(tc.failed, tc.retryAfter)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("Next(%d, %s): got (%s, %v), want (%s, %v)", tc.failed, tc.retryAfter, got, ok, tc.want, tc.wantOK)
			}
		})
	}
	p, _ := New(DefaultSchedule, 0.2, nil)
	if got := p.MaxAttempts(); got != 8 {
		t.Errorf("MaxAttempts: got %d, want 8", got)
	}
}

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []time.Duration
		wantErr bool
	}{
		{"0s,5s,5m", []time.Duration{0, 5 * time.Second, 5 * time.Minute}, false},
		{" 0s , 1h ,", []time.Duration{0, time.Hour}, false},
		{"", nil, true},
		{"5x", nil, true},
		{"-1s", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSchedule(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error: got %v, want error %v", err, tc.wantErr)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"0s,5s,5m,30m,2h,5h,10h,10h", "", ",", "1h,-1s", "9999999999h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseSchedule(s)
		if err != nil {
			return
		}
		if len(got) == 0 {
			t.Fatalf("ParseSchedule(%q): no error and no delays", s)
		}
		for _, d := range got {
			if d < 0 {
				t.Fatalf("ParseSchedule(%q): negative delay %s", s, d)
			}
		}
		if _, err := New(got, 0.2, nil); err != nil {
			t.Fatalf("New with a parsed schedule: %v", err)
		}
	})
}
