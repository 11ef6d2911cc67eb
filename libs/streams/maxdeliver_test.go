package streams

import (
	"testing"
	"time"
)

func TestNakDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n    uint64
		want time.Duration
	}{{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {4, 8 * time.Second}, {7, time.Minute}, {MaxDeliver, time.Minute}, {1 << 62, time.Minute}}
	for _, tt := range tests {
		if got := NakDelay(tt.n, time.Second, time.Minute); got != tt.want {
			t.Errorf("NakDelay(%d): got %s, want %s", tt.n, got, tt.want)
		}
	}
}
