package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/signing"
	"github.com/customertext/webhooks/services/dispatcher/internal/worker"
)

// buildBinary compiles the dispatcher into a temporary folder.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dispatcher")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is a dispatcher running as a child process.
type process struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	// exited is closed when the process has ended; err is then its Wait result.
	exited chan struct{}
	err    error
}

func startProcess(t *testing.T, bin string, env map[string]string) *process {
	t.Helper()
	p := &process{logs: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout = p.logs
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start dispatcher: %v", err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("child dispatcher %d logs:\n%s", p.cmd.Process.Pid, p.logs.String())
		}
	})
	return p
}

// gatedReceiver holds every request until the gate opens; it records which event ids were
// answered 200 after that.
type gatedReceiver struct {
	srv      *httptest.Server
	gate     chan struct{}
	once     sync.Once
	mu       sync.Mutex
	held     int
	answered map[string]int
}

func startGatedReceiver(t *testing.T, delay time.Duration) *gatedReceiver {
	t.Helper()
	g := &gatedReceiver{gate: make(chan struct{}), answered: map[string]int{}}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.held++
		g.mu.Unlock()
		select {
		case <-g.gate:
		case <-r.Context().Done():
			return
		}
		time.Sleep(delay) // a slow endpoint, so deliveries are in flight at shutdown
		if r.Context().Err() != nil {
			return
		}
		w.WriteHeader(http.StatusOK)
		g.mu.Lock()
		g.answered[r.Header.Get(signing.HeaderID)]++
		g.mu.Unlock()
	}))
	t.Cleanup(g.srv.Close)
	t.Cleanup(g.open)
	return g
}

func (g *gatedReceiver) open() {
	g.once.Do(func() { close(g.gate) })
}

func (g *gatedReceiver) counts() (held, answered int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held, len(g.answered)
}

// TestKilledReplicaLosesNothing kills a replica with SIGKILL while it has deliveries in flight;
// another replica, started afterwards, delivers every event once AckWait has passed.
func TestKilledReplicaLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	_, url := startNATS(t)
	_, js := connectJS(t, url)
	rcv := startGatedReceiver(t, 0)
	cfg, _ := webhookConfig(t, "wh_1", "acc_1", rcv.srv.URL, "new_contact")
	cs := startConfigServer(t, cfg)
	env := dispatcherEnv(url, cs.addr,
		"CONCURRENCY", "16",
		"PER_ENDPOINT_CONCURRENCY", "8",
		"DELIVERY_TIMEOUT", "20s",
		"ACK_WAIT", "25s",
		"LOG_LEVEL", "info")
	// AckWait bounds how long the dead replica's jobs wait; keep the test short.
	env["DELIVERY_TIMEOUT"], env["ACK_WAIT"] = "3s", "5s"

	first := startProcess(t, bin, env)
	const events = 40
	for i := range events {
		publishEvent(t, js, "acc_1", newContact("c"+strconv.Itoa(i)))
	}
	eventually(t, 60*time.Second, "deliveries in flight at the first replica", func() bool {
		held, _ := rcv.counts()
		return held >= 8
	})
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.exited
	held, answered := rcv.counts()
	if answered != 0 {
		t.Fatalf("answered before the kill: got %d, want 0", answered)
	}
	rcv.open()

	startProcess(t, bin, env)
	eventually(t, 120*time.Second, "every event delivered by the second replica", func() bool {
		_, answered := rcv.counts()
		return answered == events
	})
	t.Logf("%d requests were in flight at the killed replica", held)
}

// TestSIGTERMFinishesInFlightDeliveries sends SIGTERM while deliveries are in flight: the
// replica stops pulling, lets them finish (answered, recorded, acknowledged) and exits 0.
func TestSIGTERMFinishesInFlightDeliveries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	_, url := startNATS(t)
	_, js := connectJS(t, url)
	rcv := startGatedReceiver(t, 500*time.Millisecond)
	cfg, _ := webhookConfig(t, "wh_1", "acc_1", rcv.srv.URL, "new_contact")
	cs := startConfigServer(t, cfg)
	attempts := newAttemptReader(t, js)
	env := dispatcherEnv(url, cs.addr, "CONCURRENCY", "4", "PER_ENDPOINT_CONCURRENCY", "4",
		"DELIVERY_TIMEOUT", "20s", "ACK_WAIT", "30s", "SHUTDOWN_TIMEOUT", "20s")

	p := startProcess(t, bin, env)
	const events = 20
	for i := range events {
		publishEvent(t, js, "acc_1", newContact("c"+strconv.Itoa(i)))
	}
	eventually(t, 60*time.Second, "four deliveries in flight", func() bool {
		held, _ := rcv.counts()
		return held >= 4
	})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rcv.open()
	select {
	case <-p.exited:
		var exit *exec.ExitError
		if errors.As(p.err, &exit) {
			t.Fatalf("exit after SIGTERM: got %v, want status 0", p.err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("dispatcher still running 60s after SIGTERM")
	}
	held, answered := rcv.counts()
	if answered < 4 {
		t.Errorf("deliveries finished during shutdown: got %d, want >= 4 (those in flight)", answered)
	}
	if held >= events {
		t.Errorf("requests started: got %d, want < %d (pulling stopped)", held, events)
	}
	var recs []*webhooksv1.AttemptRecord
	eventually(t, 30*time.Second, "records of the finished deliveries", func() bool {
		recs = attempts.poll(t)
		return len(recs) >= answered
	})
	for _, r := range recs {
		if r.GetOutcome() != webhooksv1.Outcome_OUTCOME_SUCCEEDED {
			t.Errorf("record of %s: outcome got %v, want SUCCEEDED", r.GetDeliveryId(), r.GetOutcome())
		}
	}

	// A fresh replica delivers the rest.
	startProcess(t, bin, env)
	eventually(t, 60*time.Second, "every event delivered", func() bool {
		_, answered := rcv.counts()
		return answered == events
	})
}

// TestRunStopsCleanly checks that run returns nil on cancellation and leaves no goroutine
// behind.
func TestRunStopsCleanly(t *testing.T) {
	_, url := startNATS(t)
	_, js := connectJS(t, url)
	rcv := startReceiver(t, nil)
	cfg, _ := webhookConfig(t, "wh_1", "acc_1", rcv.srv.URL, "new_contact")
	cs := startConfigServer(t, cfg)
	env := dispatcherEnv(url, cs.addr)
	// The consumers' goroutines live in the embedded server, not in run: create them first.
	parsed, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, _, err := ensureConsumers(ctx, js, parsed, worker.NewThrottle(worker.ThrottleConfig{}, nil)); err != nil { // fan-out and both lanes
		t.Fatal(err)
	}
	opts := []goleak.Option{goleak.IgnoreCurrent()}

	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, func(k string) string { return env[k] }, &syncBuffer{}) }()
	ev := publishEvent(t, js, "acc_1", newContact("c1"))
	eventually(t, 30*time.Second, "delivery", func() bool { return rcv.distinctIDs()[ev.EventID] == 1 })
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run: got %v, want nil", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("run did not return within 60s of cancellation")
	}
	rcv.srv.CloseClientConnections() // the sender's idle keep-alive connections
	goleak.VerifyNone(t, opts...)
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	base := map[string]string{"SERVICE_TOKEN": "x"}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
	}{
		{"defaults", base, nil, ""},
		{"missing token", map[string]string{}, nil, "SERVICE_TOKEN"},
		{"bad concurrency", map[string]string{"SERVICE_TOKEN": "x", "CONCURRENCY": "0"}, nil, "CONCURRENCY"},
		{"bad allow-list", map[string]string{"SERVICE_TOKEN": "x", "SSRF_ALLOW": "nope"}, nil, "SSRF_ALLOW"},
		{"ack wait too short", map[string]string{"SERVICE_TOKEN": "x", "ACK_WAIT": "5s"}, nil, "ACK_WAIT"},
		{"bad schedule", map[string]string{"SERVICE_TOKEN": "x", "RETRY_SCHEDULE": "soon"}, nil, "RETRY_SCHEDULE"},
		{"pprof on a public address", map[string]string{"SERVICE_TOKEN": "x", "PPROF_ADDR": "0.0.0.0:6060"}, nil, "PPROF_ADDR"},
		{"flag wins over env", map[string]string{"SERVICE_TOKEN": "x", "CONCURRENCY": "0"}, []string{"-concurrency", "8"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseConfig(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if err == nil || !containsAll(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error naming %s", err, tc.wantErr)
			}
			_ = cfg
		})
	}
	cfg, err := parseConfig(nil, func(k string) string { return base[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AdminAddr != "127.0.0.1:7205" || cfg.SubscriptionsAddr != "127.0.0.1:7104" || cfg.Concurrency != 256 ||
		cfg.PerEndpoint != 32 || cfg.DeliveryTimeout != 10*time.Second || cfg.ShutdownTimeout != 25*time.Second ||
		cfg.ResyncInterval != 30*time.Second || len(cfg.RetrySchedule) != 8 {
		t.Errorf("defaults: got %+v", cfg)
	}
}
