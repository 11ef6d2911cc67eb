package devstack

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Metric reads one sample (name with its labels exactly as exposed, e.g.
// `dispatcher_index_webhooks{state="enabled"}`) from a service's /metrics.
func Metric(ctx context.Context, adminAddr, sample string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+adminAddr+"/metrics", nil)
	if err != nil {
		return 0, fmt.Errorf("build metrics request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", adminAddr, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("parse %s: %w", sample, err)
			}
			return f, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read metrics of %s: %w", adminAddr, err)
	}
	return 0, fmt.Errorf("metric %s not exposed by %s", sample, adminAddr)
}

const indexedSample = `dispatcher_index_webhooks{state="enabled"}`

// IndexedWebhooks returns, per dispatcher process, how many enabled webhooks its index holds.
func (s *Stack) IndexedWebhooks(ctx context.Context) (map[string]float64, error) {
	out := map[string]float64{}
	for _, p := range s.Dispatchers() {
		v, err := Metric(ctx, p.AdminAddr, indexedSample)
		if err != nil {
			return nil, err
		}
		out[p.Name] = v
	}
	return out, nil
}

// WaitIndexed waits until every dispatcher's index holds at least n enabled webhooks.
func (s *Stack) WaitIndexed(ctx context.Context, n float64) error {
	for {
		counts, err := s.IndexedWebhooks(ctx)
		ready := err == nil && len(counts) > 0
		for _, v := range counts {
			ready = ready && v >= n
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %v indexed webhooks (last %v, %v): %w", n, counts, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// MinIndexed returns the smallest index size over the dispatchers.
func (s *Stack) MinIndexed(ctx context.Context) (float64, error) {
	counts, err := s.IndexedWebhooks(ctx)
	if err != nil {
		return 0, err
	}
	first := true
	var m float64
	for _, v := range counts {
		if first || v < m {
			m, first = v, false
		}
	}
	return m, nil
}
