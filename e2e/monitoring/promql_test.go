package monitoring

import (
	"slices"
	"testing"
)

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`sum by (outcome) (rate(dispatcher_deliveries_total{namespace="$namespace", job=~"a|b"}[$__rate_interval]))`,
			[]string{"dispatcher_deliveries_total"}},
		{`histogram_quantile(0.99, sum by (le, lane) (rate(dispatcher_queue_wait_seconds_bucket{x="}"}[5m])))`,
			[]string{"dispatcher_queue_wait_seconds_bucket"}},
		{`a:b:rate5m / on (namespace) group_left (x) c_total > 0.5 and d offset 5m`, []string{"a:b:rate5m", "c_total", "d"}},
		{`label_values(up{job=~"contacts"}, namespace)`, []string{"up"}},
		{`vector(0.001)`, nil},
		{`max by (namespace) (x) - min by (namespace, state) (y) > 1e3`, []string{"x", "y"}},
	}
	for _, tt := range tests {
		got := MetricNames(tt.expr)
		if !slices.Equal(got, tt.want) {
			t.Errorf("MetricNames(%s): got %v, want %v", tt.expr, got, tt.want)
		}
	}
}
