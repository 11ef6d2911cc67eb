package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/customertext/webhooks/e2e/chaos"
	"github.com/customertext/webhooks/libs/postgres"
)

// errScenariosFailed ends a run in which a scenario failed (exit status 1).
var errScenariosFailed = errors.New("some scenarios failed")

// summary is the last line of the run.
type summary struct {
	// Scenarios names those that ran and passed.
	Scenarios         []string `json:"scenarios"`
	Failed            []string `json:"failed"`
	Form              string   `json:"form"`
	Produced          int      `json:"produced"`
	Delivered         int      `json:"delivered"`
	Lost              int      `json:"lost"`
	DuplicatesSameID  int      `json:"duplicates_same_id"`
	DuplicatesOtherID int      `json:"duplicates_other_id"`
	BadSignatures     int      `json:"bad_signatures"`
	Seconds           float64  `json:"seconds"`
}

type options struct {
	binDir    string
	dataDir   string
	short     bool
	natsNodes int
	only      []string
	baseURL   string
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.binDir, "bin", ".bin", "folder with the service binaries and nats-server (make build)")
	fs.StringVar(&o.dataDir, "data", "", "folder for NATS storage and logs (default: a fresh temporary folder)")
	fs.BoolVar(&o.short, "short", getenv("CHAOS") == "short", "the short form for CI: shorter faults and loads (default from CHAOS=short)")
	fs.IntVar(&o.natsNodes, "nats-nodes", 1, "nats-server processes: 1, or 3 for a JetStream cluster with R3 streams")
	only := fs.String("only", "", "comma-separated scenario names to run (default: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	all := scenarios()
	if *only != "" {
		o.only = strings.Split(*only, ",")
		for _, n := range o.only {
			if !slices.ContainsFunc(all, func(s scenario) bool { return s.name == n }) {
				return fmt.Errorf("unknown scenario %q", n)
			}
		}
	}
	bin, err := filepath.Abs(o.binDir)
	if err != nil {
		return fmt.Errorf("resolve bin dir: %w", err)
	}
	o.binDir = bin
	if o.dataDir == "" {
		if o.dataDir, err = os.MkdirTemp("", "customertext-chaos-"); err != nil {
			return fmt.Errorf("create data dir: %w", err)
		}
	}
	if o.baseURL = getenv("DATABASE_URL"); o.baseURL == "" {
		o.baseURL = postgres.DefaultURL
	}

	form := "full"
	if o.short {
		form = "short"
	}
	fmt.Fprintf(stdout, "chaos (%s form): %d nats-server node(s), 2 dispatchers; data and logs in %s\n", form, o.natsNodes, o.dataDir)
	start := time.Now()
	sum := summary{Scenarios: []string{}, Failed: []string{}, Form: form}
	for _, sc := range all {
		if o.only != nil && !slices.Contains(o.only, sc.name) {
			continue
		}
		if sc.cluster && o.natsNodes < 3 {
			if o.only != nil {
				return fmt.Errorf("scenario %s needs a NATS cluster: -nats-nodes 3", sc.name)
			}
			fmt.Fprintf(stdout, "skip %s: needs a NATS cluster (NATS_NODES=3)\n", sc.name)
			continue
		}
		if ctx.Err() != nil {
			break
		}
		r := runScenario(ctx, o, sc, stdout)
		sum.Produced += r.tally.Produced
		sum.Delivered += r.tally.Delivered
		sum.Lost += r.tally.Lost
		sum.DuplicatesSameID += r.tally.DuplicatesSameID
		sum.DuplicatesOtherID += r.tally.DuplicatesOtherID
		sum.BadSignatures += r.tally.BadSignatures
		if r.passed() {
			sum.Scenarios = append(sum.Scenarios, sc.name)
		} else {
			sum.Failed = append(sum.Failed, sc.name)
		}
	}
	sum.Seconds = float64(time.Since(start).Milliseconds()) / 1000
	b, err := json.Marshal(sum)
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	if len(sum.Failed) > 0 {
		fmt.Fprintf(stdout, "FAILED: %s\n", strings.Join(sum.Failed, ", "))
	}
	fmt.Fprintln(stdout, string(b))
	if len(sum.Failed) > 0 {
		return errScenariosFailed
	}
	return ctx.Err()
}

// result is one scenario's outcome.
type result struct {
	tally    chaos.Tally
	drain    time.Duration
	failures []string
}

func (r result) passed() bool { return len(r.failures) == 0 }

func runScenario(ctx context.Context, o options, sc scenario, stdout io.Writer) result {
	fmt.Fprintf(stdout, "\n=== %s: %s\n", sc.name, sc.about)
	began := time.Now()
	s := &session{short: o.short, out: stdout, began: began}
	var r result
	cfg := chaos.Config{Name: strings.ReplaceAll(sc.name, "-", "_"), BinDir: o.binDir, DataDir: o.dataDir,
		DatabaseURL: o.baseURL, NATSNodes: o.natsNodes, Env: sc.env}
	p, err := chaos.Start(ctx, cfg)
	if err != nil && ctx.Err() == nil {
		// Ports are picked free and released before the services bind them; on a busy machine
		// another process can take one in between. That is the harness's problem, not the
		// scenario's: one more try, in a fresh folder.
		s.logf("platform did not start (%v); trying once more", err)
		cfg.Name += "_retry"
		p, err = chaos.Start(ctx, cfg)
	}
	if err != nil {
		r.failures = append(r.failures, "start the platform: "+err.Error())
		report(stdout, sc.name, r, time.Since(began))
		return r
	}
	defer p.Close()
	s.p = p
	s.logf("platform up in %s (logs in %s)", time.Since(began).Round(100*time.Millisecond), filepath.Join(p.Dir, "logs"))
	if err := sc.run(ctx, s); err != nil {
		s.fail("%v", err)
	}
	r = s.finish(ctx)
	report(stdout, sc.name, r, time.Since(began))
	return r
}

func report(w io.Writer, name string, r result, took time.Duration) {
	t := r.tally
	verdict := "PASS"
	if !r.passed() {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "--- %s %s: produced %d, delivered %d, lost %d, duplicates %d (same webhook-id) / %d (other webhook-id), bad signatures %d, unexpected %d, drain %s, took %s\n",
		verdict, name, t.Produced, t.Delivered, t.Lost, t.DuplicatesSameID, t.DuplicatesOtherID, t.BadSignatures, t.Unexpected,
		r.drain.Round(100*time.Millisecond), took.Round(time.Second))
	for _, f := range r.failures {
		fmt.Fprintf(w, "    failure: %s\n", f)
	}
}
