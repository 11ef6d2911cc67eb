package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// receivers are real HTTP servers on loopback, one per port, that record the publish→receipt
// latency of every request by the label in its path: /<label>/<behaviour>.
//
// Behaviours: ok (204), fail (500), hang (never answers before the client gives up), slow (204
// after 20 ms).
type receivers struct {
	servers []*http.Server
	URLs    []string

	mu    sync.Mutex
	paths map[string]int
	lats  map[string][]time.Duration
	last  map[string]time.Time
	frst  map[string]time.Time
	times map[string][]time.Time
}

func startReceivers(n int) (*receivers, error) {
	r := &receivers{paths: map[string]int{}, lats: map[string][]time.Duration{}, last: map[string]time.Time{}, frst: map[string]time.Time{}, times: map[string][]time.Time{}}
	for range n {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			r.close()
			return nil, fmt.Errorf("listen: %w", err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(lis) }()
		r.servers = append(r.servers, srv)
		r.URLs = append(r.URLs, "http://"+lis.Addr().String())
	}
	return r, nil
}

var tsKey = []byte(`"timestamp":"`)

func (r *receivers) handle(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	body, _ := io.ReadAll(req.Body)
	label, behaviour, _ := strings.Cut(strings.TrimPrefix(req.URL.Path, "/"), "/")
	switch behaviour {
	case "fail":
		w.WriteHeader(http.StatusInternalServerError)
		return
	case "hang":
		select {
		case <-req.Context().Done():
		case <-time.After(time.Minute):
		}
		return
	case "slow":
		time.Sleep(20 * time.Millisecond)
	}
	var lat time.Duration
	if i := bytes.Index(body, tsKey); i >= 0 {
		rest := body[i+len(tsKey):]
		if j := bytes.IndexByte(rest, '"'); j > 0 {
			if ts, err := time.Parse(time.RFC3339Nano, string(rest[:j])); err == nil {
				lat = now.Sub(ts)
			}
		}
	}
	r.mu.Lock()
	r.paths[req.Host+req.URL.Path]++
	r.lats[label] = append(r.lats[label], lat)
	r.times[label] = append(r.times[label], now)
	if _, ok := r.frst[label]; !ok {
		r.frst[label] = now
	}
	r.last[label] = now
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// count returns how many successful requests arrived with label.
func (r *receivers) count(label string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lats[label])
}

// reached reports whether every URL got at least one successful request.
func (r *receivers) reached(urls []string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, u := range urls {
		hostPath, _, _ := strings.Cut(strings.TrimPrefix(u, "http://"), "?")
		if r.paths[hostPath] == 0 {
			return false
		}
	}
	return true
}

// reset forgets the arrivals of label.
func (r *receivers) reset(label string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.lats, label)
	delete(r.times, label)
	delete(r.frst, label)
	delete(r.last, label)
}

// window returns the first and last arrival of label.
func (r *receivers) window(label string) (time.Time, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.frst[label], r.last[label]
}

// percentile of the latencies of label (0..100).
func (r *receivers) percentile(label string, p float64) time.Duration {
	r.mu.Lock()
	l := slices.Clone(r.lats[label])
	r.mu.Unlock()
	return percentile(l, p)
}

func percentile(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	i := int(float64(len(l)-1) * p / 100)
	return l[i]
}

// waitCount waits until label has at least n arrivals.
func (r *receivers) waitCount(ctx context.Context, label string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for r.count(label) < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d of %d deliveries arrived within %s", label, r.count(label), n, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func (r *receivers) close() {
	for _, s := range r.servers {
		_ = s.Close()
	}
}

// timeline returns the p50 and p99 of label per window of w since its first arrival, a line each.
func (r *receivers) timeline(label string, w time.Duration) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts, ls := r.times[label], r.lats[label]
	if len(ts) == 0 {
		return ""
	}
	var b strings.Builder
	start := ts[0]
	var cur []time.Duration
	win := 0
	flush := func() {
		if len(cur) > 0 {
			fmt.Fprintf(&b, "  t=%3ds n=%5d p50=%6.1fms p99=%6.1fms\n", win*int(w/time.Second), len(cur), float64(percentile(cur, 50).Microseconds())/1000, float64(percentile(cur, 99).Microseconds())/1000)
		}
		cur = nil
	}
	for i, t := range ts {
		k := int(t.Sub(start) / w)
		if k != win {
			flush()
			win = k
		}
		cur = append(cur, ls[i])
	}
	flush()
	return b.String()
}
