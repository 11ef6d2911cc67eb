package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/customertext/webhooks/e2e/devstack"
	"github.com/customertext/webhooks/libs/event"
	eventsv1 "github.com/customertext/webhooks/libs/gen/customertext/events/v1"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/outbox"
	"github.com/customertext/webhooks/libs/postgres"
)

const benchSchema = "bench"

type options struct {
	binDir     string
	events     int
	burst      int
	burstHooks int
	steadyRate int
	steadyFor  time.Duration
	receivers  int
	skipScale  bool
	skipFair   bool
	serviceEnv []string
	cpuProfile string
	natsNodes  int
}

// summary is the final JSON line.
type summary struct {
	NATSNodes             int     `json:"nats_nodes"`
	DeliveriesPerSec      float64 `json:"deliveries_per_sec"`
	HTTPCeilingPerSec     float64 `json:"http_ceiling_per_sec"`
	CeilingRatio          float64 `json:"ceiling_ratio"`
	P50Ms                 float64 `json:"p50_ms"`
	P99Ms                 float64 `json:"p99_ms"`
	P99MsWithFaults       float64 `json:"p99_ms_with_faults"`
	Scale2Vs1             float64 `json:"scale_2_vs_1"`
	QuietP99MsDuringBurst float64 `json:"quiet_p99_ms_during_burst"`
	BurstDrainPerSec      float64 `json:"burst_drain_per_sec"`
	BurstDrainVsSustained float64 `json:"burst_drain_vs_sustained"`
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.binDir, "bin", ".bin", "folder with the service binaries")
	fs.IntVar(&o.natsNodes, "nats-nodes", 1, "1: one embedded nats-server; 3: a 3-node JetStream cluster (processes on loopback) with R3 streams")
	fs.IntVar(&o.events, "events", 20000, "events in the throughput run (each goes to 4 webhooks)")
	fs.IntVar(&o.burst, "burst", 100000, "events of the bursting account in the fairness run")
	fs.IntVar(&o.burstHooks, "burst-webhooks", 4, "webhooks of the bursting account (4, as in the throughput run, compares its drain with deliveries_per_sec like for like)")
	fs.IntVar(&o.steadyRate, "rate", 1000, "events per second of the steady latency runs")
	fs.DurationVar(&o.steadyFor, "steady-for", 10*time.Second, "duration of each steady latency run")
	fs.IntVar(&o.receivers, "receivers", 8, "receiver servers (ports)")
	fs.BoolVar(&o.skipScale, "skip-scale", false, "skip the two-replica scaling run")
	fs.BoolVar(&o.skipFair, "skip-fairness", false, "skip the burst fairness run")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (embedded NATS, receivers, relay) during the throughput run")
	fs.Func("service-env", "KEY=VALUE added to every service's environment (repeatable), e.g. CONCURRENCY=512", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("want KEY=VALUE, got %q", v)
		}
		o.serviceEnv = append(o.serviceEnv, v)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	bin, err := filepath.Abs(o.binDir)
	if err != nil {
		return fmt.Errorf("resolve bin dir: %w", err)
	}
	o.binDir = bin
	base := getenv("DATABASE_URL")
	if base == "" {
		base = postgres.DefaultURL
	}

	rcv, err := startReceivers(o.receivers)
	if err != nil {
		return err
	}
	defer rcv.close()
	s := summary{NATSNodes: max(o.natsNodes, 1)}

	fmt.Fprintln(stdout, "== HTTP ceiling: raw POSTs from one process to the same receivers")
	s.HTTPCeilingPerSec = round(httpCeiling(ctx, rcv, 3*time.Second))
	fmt.Fprintf(stdout, "   %.0f requests/s\n", s.HTTPCeilingPerSec)

	if err := mainScenarios(ctx, o, base, rcv, &s, stdout); err != nil {
		return err
	}
	if !o.skipScale {
		if err := scaleScenario(ctx, o, base, rcv, &s, stdout); err != nil {
			return err
		}
	}
	if s.HTTPCeilingPerSec > 0 {
		s.CeilingRatio = round(s.DeliveriesPerSec / s.HTTPCeilingPerSec)
	}
	if s.DeliveriesPerSec > 0 {
		s.BurstDrainVsSustained = round(s.BurstDrainPerSec / s.DeliveriesPerSec)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	fmt.Fprintln(stdout, string(b))
	return nil
}

// env is a running stack plus the bench's own outbox publisher.
type env struct {
	stack *devstack.Stack
	pool  *pgxpool.Pool
	nc    *nats.Conn
	js    jetstream.JetStream
	stop  func()
}

func startEnv(ctx context.Context, o options, base, dbName string, extra []string) (*env, error) {
	dbURL, err := devstack.FreshDatabase(ctx, base, dbName)
	if err != nil {
		return nil, err
	}
	dataDir, err := os.MkdirTemp("", "customertext-bench-")
	if err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	stack, err := devstack.Start(ctx, devstack.Config{BinDir: o.binDir, DataDir: dataDir, DatabaseURL: dbURL,
		ExtraEnv: append(append([]string{"LOG_LEVEL=warn"}, o.serviceEnv...), extra...), NATSNodes: o.natsNodes})
	if err != nil {
		return nil, fmt.Errorf("start stack (logs in %s): %w", dataDir, err)
	}
	e := &env{stack: stack}
	fail := func(err error) (*env, error) {
		e.close()
		return nil, err
	}
	if e.pool, err = postgres.Open(ctx, dbURL, benchSchema, 8); err != nil {
		return fail(err)
	}
	if err := outbox.Migrate(ctx, e.pool, benchSchema); err != nil {
		return fail(err)
	}
	if e.nc, err = nats.Connect(stack.NATSURL()); err != nil {
		return fail(fmt.Errorf("connect to nats: %w", err))
	}
	js, err := jetstream.New(e.nc)
	if err != nil {
		return fail(fmt.Errorf("jetstream: %w", err))
	}
	relay, err := outbox.NewRelay(e.pool, js, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(),
		outbox.RelayConfig{Schema: benchSchema, BatchSize: 1000, PollInterval: 50 * time.Millisecond})
	if err != nil {
		return fail(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = relay.Run(rctx); close(done) }()
	e.stop = func() { cancel(); <-done }
	e.js = js
	return e, nil
}

// waitRelayed returns how long after start the outbox was empty again, i.e. every event written
// so far had been published to EVENTS.
func (e *env) waitRelayed(ctx context.Context, start time.Time) time.Duration {
	for ctx.Err() == nil {
		var n int
		if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&n); err == nil && n == 0 {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func (e *env) close() {
	if e.stop != nil {
		e.stop()
	}
	if e.nc != nil {
		e.nc.Close()
	}
	if e.pool != nil {
		e.pool.Close()
	}
	if e.stack != nil {
		e.stack.Stop()
	}
}

// account creates an account with one webhook per URL (all for new_contact).
func (e *env) account(ctx context.Context, urls []string) (string, error) {
	p := e.stack.Ports()
	svc, err := devstack.Dial(devstack.Addr(p.SubscriptionsGRPC), e.stack.ServiceToken)
	if err != nil {
		return "", err
	}
	defer svc.Close()
	acct, err := webhooksv1.NewAccountServiceClient(svc).CreateAccount(ctx, &webhooksv1.CreateAccountRequest{Name: "bench"})
	if err != nil {
		return "", fmt.Errorf("create account: %w", err)
	}
	key, err := webhooksv1.NewAccountServiceClient(svc).CreateApiKey(ctx, &webhooksv1.CreateApiKeyRequest{
		AccountId: acct.GetAccountId(), UserEmail: "bench@example.com", Role: webhooksv1.Role_ROLE_ADMIN})
	if err != nil {
		return "", fmt.Errorf("create key: %w", err)
	}
	admin, err := devstack.Dial(devstack.Addr(p.SubscriptionsGRPC), key.GetApiKey())
	if err != nil {
		return "", err
	}
	defer admin.Close()
	for _, u := range urls {
		if _, err := webhooksv1.NewWebhookServiceClient(admin).CreateWebhook(ctx, &webhooksv1.CreateWebhookRequest{
			Url: u, EventTypes: []string{event.NewContact}}); err != nil {
			return "", fmt.Errorf("create webhook %s: %w", u, err)
		}
	}
	return acct.GetAccountId(), nil
}

// publish adds n new_contact events per account to the outbox, batchSize per transaction, as an
// import does (contacts writes a transaction's events with one outbox.AddMany).
func (e *env) publish(ctx context.Context, accounts []string, n int) error {
	const batchSize = 500
	for start := 0; start < n; start += batchSize {
		err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
			var batch []outbox.Event
			for i := start; i < min(n, start+batchSize); i++ {
				for _, a := range accounts {
					env, err := event.New(a, &eventsv1.NewContact{ContactId: fmt.Sprint(i), FirstName: "Bench", Phone: "+15551234567", Source: "import"}, time.Now())
					if err != nil {
						return err
					}
					batch = append(batch, outbox.Event{Envelope: env})
				}
			}
			return outbox.AddMany(ctx, tx, benchSchema, batch)
		})
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	return nil
}

// steady publishes rate events per second, round robin over accounts, for d; one transaction per
// 10 ms tick, as a busy service would commit. A tick publishes every event due by then, so a slow
// commit is caught up on rather than lowering the rate.
func (e *env) steady(ctx context.Context, accounts []string, rate int, d time.Duration) (int, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	total := int(float64(rate) * d.Seconds())
	sent := 0
	for sent < total {
		select {
		case <-ctx.Done():
			return sent, ctx.Err()
		case <-tick.C:
		}
		due := min(total, int(float64(rate)*time.Since(start).Seconds()))
		if due <= sent {
			continue
		}
		err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
			for i := sent; i < due; i++ {
				env, err := event.New(accounts[i%len(accounts)], &eventsv1.NewContact{ContactId: fmt.Sprint(i), Source: "manual"}, time.Now())
				if err != nil {
					return err
				}
				if err := outbox.Add(ctx, tx, benchSchema, env, nil); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return sent, fmt.Errorf("steady publish: %w", err)
		}
		sent = due
	}
	return sent, nil
}

// warm publishes one event per account until every URL got a request, so that every dispatcher
// has indexed the new webhooks; then it lets the stragglers land and forgets label's arrivals.
func (e *env) warm(ctx context.Context, rcv *receivers, accounts []string, label string, urls []string) error {
	deadline := time.Now().Add(60 * time.Second)
	for !rcv.reached(urls) {
		if time.Now().After(deadline) {
			return fmt.Errorf("warm-up of %s: not every webhook got a request within 60s", label)
		}
		if err := e.publish(ctx, accounts, 1); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	time.Sleep(500 * time.Millisecond)
	rcv.reset(label)
	return nil
}

func ms(d time.Duration) float64 { return round(float64(d.Microseconds()) / 1000) }

func round(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
