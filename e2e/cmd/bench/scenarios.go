package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/customertext/webhooks/libs/event"
)

// httpCeiling measures how many POSTs per second one process of this machine can make to the same
// receivers, with a connection pool sized to the concurrency, a sample event as the body.
func httpCeiling(ctx context.Context, rcv *receivers, d time.Duration) float64 {
	const workers = 128
	env, _ := event.Sample(event.NewContact, "acct_ceiling", time.Now())
	body, _ := env.Marshal()
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: workers, MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	var n atomic.Int64
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := rcv.URLs[w%len(rcv.URLs)] + "/ceiling/ok"
			for time.Now().Before(end) && ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				n.Add(1)
			}
		}()
	}
	start := time.Now()
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

func urls(rcv *receivers, first, n int, label, behaviour string) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = fmt.Sprintf("%s/%s/%s?w=%d", rcv.URLs[(first+i)%len(rcv.URLs)], label, behaviour, first+i)
	}
	return out
}

// accounts creates n accounts, each with the webhooks that urlsFor returns for it.
func (e *env) accounts(ctx context.Context, n int, urlsFor func(i int) []string) ([]string, []string, error) {
	var ids, all []string
	for i := range n {
		u := urlsFor(i)
		id, err := e.account(ctx, u)
		if err != nil {
			return nil, nil, err
		}
		ids = append(ids, id)
		all = append(all, u...)
	}
	return ids, all, nil
}

func mainScenarios(ctx context.Context, o options, base string, rcv *receivers, s *summary, out io.Writer) error {
	fmt.Fprintln(out, "== Starting the platform (1 dispatcher)")
	e, err := startEnv(ctx, o, base, "customertext_bench", nil)
	if err != nil {
		return err
	}
	defer e.close()

	// Throughput: 8 accounts × 4 webhooks on different receivers; every event fans out to 4.
	tput, tputURLs, err := e.accounts(ctx, 8, func(i int) []string { return urls(rcv, i*4, 4, "tput", "ok") })
	if err != nil {
		return err
	}
	if err := e.warm(ctx, rcv, tput, "tput", tputURLs); err != nil {
		return err
	}
	perAccount := o.events / len(tput)
	want := perAccount * len(tput) * 4
	fmt.Fprintf(out, "== Throughput: %d events → %d deliveries to healthy endpoints\n", perAccount*len(tput), want)
	if o.cpuProfile != "" {
		stop, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	pubStart := time.Now()
	if err := e.publish(ctx, tput, perAccount); err != nil {
		return err
	}
	pubTook := time.Since(pubStart)
	relayTook := e.waitRelayed(ctx, pubStart)
	if err := rcv.waitCount(ctx, "tput", want, 10*time.Minute); err != nil {
		return err
	}
	events := perAccount * len(tput)
	fmt.Fprintf(out, "   (outbox writes: %d events in %s, %.0f/s; relayed to EVENTS after %s, %.0f events/s)\n",
		events, pubTook.Round(time.Millisecond), float64(events)/pubTook.Seconds(),
		relayTook.Round(time.Millisecond), float64(events)/relayTook.Seconds())
	first, last := rcv.window("tput")
	s.DeliveriesPerSec = round(float64(want) / last.Sub(first).Seconds())
	fmt.Fprintf(out, "   %.0f deliveries/s sustained (%s from first to last)\n", s.DeliveriesPerSec, last.Sub(first).Round(time.Millisecond))

	// Latency at a steady rate.
	lat, latURLs, err := e.accounts(ctx, 10, func(i int) []string { return urls(rcv, i, 1, "lat", "ok") })
	if err != nil {
		return err
	}
	if err := e.warm(ctx, rcv, lat, "lat", latURLs); err != nil {
		return err
	}
	fmt.Fprintf(out, "== Latency: %d events/s for %s to 10 healthy endpoints\n", o.steadyRate, o.steadyFor)
	sent, err := e.steady(ctx, lat, o.steadyRate, o.steadyFor)
	if err != nil {
		return err
	}
	if err := rcv.waitCount(ctx, "lat", sent, 2*time.Minute); err != nil {
		return err
	}
	s.P50Ms, s.P99Ms = ms(rcv.percentile("lat", 50)), ms(rcv.percentile("lat", 99))
	fmt.Fprintf(out, "   publish→receipt p50 %.1f ms, p99 %.1f ms (%d deliveries)\n", s.P50Ms, s.P99Ms, sent)

	// Faults: 18 healthy, 2 failing (10 %) and 1 hanging endpoint share the same rate.
	healthy, hURLs, err := e.accounts(ctx, 18, func(i int) []string { return urls(rcv, i, 1, "latf", "ok") })
	if err != nil {
		return err
	}
	bad, _, err := e.accounts(ctx, 3, func(i int) []string {
		if i == 2 {
			return urls(rcv, i, 1, "hang", "hang")
		}
		return urls(rcv, i, 1, "fail", "fail")
	})
	if err != nil {
		return err
	}
	if err := e.warm(ctx, rcv, healthy, "latf", hURLs); err != nil {
		return err
	}
	mixed := append(append([]string{}, healthy...), bad...)
	fmt.Fprintf(out, "== Latency with faults: %d events/s for %s over 18 healthy, 2 failing and 1 hanging endpoints\n", o.steadyRate, o.steadyFor)
	sent, err = e.steady(ctx, mixed, o.steadyRate, o.steadyFor)
	if err != nil {
		return err
	}
	wantHealthy := 0
	for i := range sent {
		if i%len(mixed) < len(healthy) {
			wantHealthy++
		}
	}
	if err := rcv.waitCount(ctx, "latf", wantHealthy, 2*time.Minute); err != nil {
		return err
	}
	s.P99MsWithFaults = ms(rcv.percentile("latf", 99))
	fmt.Fprintf(out, "   healthy endpoints: p50 %.1f ms, p99 %.1f ms (%d deliveries)\n", ms(rcv.percentile("latf", 50)), s.P99MsWithFaults, wantHealthy)

	if o.skipFair {
		return nil
	}
	return fairness(ctx, o, e, rcv, s, out)
}

// fairness: one account bursts while 99 quiet accounts publish a steady 1,000 events/s.
func fairness(ctx context.Context, o options, e *env, rcv *receivers, s *summary, out io.Writer) error {
	quiet, qURLs, err := e.accounts(ctx, 99, func(i int) []string { return urls(rcv, i, 1, "quiet", "ok") })
	if err != nil {
		return err
	}
	burst, bURLs, err := e.accounts(ctx, 1, func(int) []string { return urls(rcv, 0, o.burstHooks, "burst", "ok") })
	if err != nil {
		return err
	}
	if err := e.warm(ctx, rcv, append(quiet, burst...), "quiet", append(qURLs, bURLs...)); err != nil {
		return err
	}
	rcv.reset("burst")
	want := o.burst * o.burstHooks
	fmt.Fprintf(out, "== Fairness: one account with %d webhooks publishes %d events at once (%d deliveries) while 99 others publish %d events/s\n",
		o.burstHooks, o.burst, want, o.steadyRate)
	burstDone := make(chan error, 1)
	go func() { burstDone <- e.publish(ctx, burst, o.burst) }()
	var quietSent int
	for {
		n, err := e.steady(ctx, quiet, o.steadyRate, time.Second)
		quietSent += n
		if err != nil {
			return err
		}
		if rcv.count("burst") >= want {
			break
		}
		if quietSent > 600*o.steadyRate {
			return fmt.Errorf("the burst did not drain within 10 minutes (%d of %d delivered)", rcv.count("burst"), want)
		}
	}
	if err := <-burstDone; err != nil {
		return err
	}
	if err := rcv.waitCount(ctx, "quiet", quietSent, 2*time.Minute); err != nil {
		return err
	}
	fmt.Fprint(out, rcv.timeline("quiet", 10*time.Second))
	first, last := rcv.window("burst")
	drained := last.Sub(first).Seconds()
	s.BurstDrainPerSec = round(float64(want) / drained)
	s.QuietP99MsDuringBurst = ms(rcv.percentile("quiet", 99))
	fmt.Fprintf(out, "   quiet accounts: p50 %.1f ms, p99 %.1f ms (%d deliveries, %.0f/s); burst drained at %.0f deliveries/s (%.0f events/s)\n",
		ms(rcv.percentile("quiet", 50)), s.QuietP99MsDuringBurst, quietSent, float64(quietSent)/drained, s.BurstDrainPerSec, float64(o.burst)/drained)
	return nil
}

// scaleScenario compares one and two dispatcher processes when each replica's concurrency cap,
// not this machine's cores, is the limit: receivers answer after 20 ms.
func scaleScenario(ctx context.Context, o options, base string, rcv *receivers, s *summary, out io.Writer) error {
	const concurrency = 32
	fmt.Fprintf(out, "== Scale: receivers answer after 20 ms, CONCURRENCY=%d per dispatcher\n", concurrency)
	e, err := startEnv(ctx, o, base, "customertext_bench_scale", []string{fmt.Sprintf("CONCURRENCY=%d", concurrency)})
	if err != nil {
		return err
	}
	defer e.close()
	accts, aURLs, err := e.accounts(ctx, 8, func(i int) []string { return urls(rcv, i, 1, "scale", "slow") })
	if err != nil {
		return err
	}
	if err := e.warm(ctx, rcv, accts, "scale", aURLs); err != nil {
		return err
	}
	measure := func(label string) (float64, error) {
		const perAccount = 600
		rcv.reset("scale")
		if err := e.publish(ctx, accts, perAccount); err != nil {
			return 0, err
		}
		want := perAccount * len(accts)
		if err := rcv.waitCount(ctx, "scale", want, 5*time.Minute); err != nil {
			return 0, err
		}
		first, last := rcv.window("scale")
		rate := float64(want) / last.Sub(first).Seconds()
		fmt.Fprintf(out, "   %s: %.0f deliveries/s\n", label, rate)
		return rate, nil
	}
	one, err := measure("1 dispatcher")
	if err != nil {
		return err
	}
	if err := e.stack.StartService(ctx, "dispatcher", 1); err != nil {
		return err
	}
	two, err := measure("2 dispatchers")
	if err != nil {
		return err
	}
	s.Scale2Vs1 = round(two / one)
	return nil
}

func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
