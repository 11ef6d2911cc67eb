package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestCountersExistAtZero: a counter that has not moved must be a 0 on the dashboard and in
// rate(), not "no data" (issue 16).
func TestCountersExistAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg); err != nil {
		t.Fatalf("New: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	series := map[string]int{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil && c.GetValue() != 0 {
				t.Errorf("%s starts at %v, want 0", mf.GetName(), c.GetValue())
			}
			series[mf.GetName()]++
		}
	}
	tests := []struct {
		name string
		want int
	}{
		{"dispatcher_deferred_total", 3},
		{"dispatcher_events_invalid_total", 4},
		{"dispatcher_platform_failures_total", 4},
		{"dispatcher_deliveries_total", 7 * 5},
		{"dispatcher_events_total", 2},
		{"dispatcher_jobs_created_total", 2},
		{"dispatcher_first_attempt_delay_seconds", 2},
		{"dispatcher_retries_scheduled_total", 1},
		{"dispatcher_dead_letters_total", 1},
	}
	for _, tt := range tests {
		if got := series[tt.name]; got != tt.want {
			t.Errorf("%s: got %d series, want %d", tt.name, got, tt.want)
		}
	}
}
