package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Broker is the NATS side of a platform: one nats-server process (NATS) or a JetStream cluster of
// them (Cluster). Nodes are numbered from 0; each keeps its ports and storage across restarts.
type Broker interface {
	// URL is every node's client URL, comma-separated as nats.Connect and NATS_URL take them.
	URL() string
	// Nodes is the number of servers.
	Nodes() int
	// Kill ends node i with SIGKILL and waits until it is gone.
	Kill(i int)
	// Terminate ends node i with SIGTERM (a clean shutdown); an error if it needed SIGKILL.
	Terminate(i int, grace time.Duration) error
	// Restart starts node i again on its data and waits until it serves JetStream.
	Restart(ctx context.Context, i int) error
	// Running reports whether node i's process is alive.
	Running(i int) bool
	// Stop ends every node.
	Stop()
}

// NATSConfig describes a single nats-server process.
type NATSConfig struct {
	// Bin is the nats-server binary (make chaos builds it from the pinned Go module).
	Bin string
	// Dir holds the configuration, JetStream storage and log; storage is kept across restarts.
	Dir string
}

// NATS is a single nats-server as its own OS process (the real binary, standalone as in
// development), so that a scenario can SIGTERM or SIGKILL it and start it again on the same port
// with the same storage. As a Broker it has one node, 0.
type NATS struct {
	cfg     NATSConfig
	port    int
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartNATS writes the server's configuration and starts it.
func StartNATS(ctx context.Context, cfg NATSConfig) (*NATS, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	n := &NATS{cfg: cfg, port: port, logPath: filepath.Join(cfg.Dir, "nats.log")}
	// max_payload as the embedded server of tests and `make dev`.
	conf := fmt.Sprintf("server_name: nats\nlisten: 127.0.0.1:%d\nmax_payload: %d\njetstream { store_dir: %q }\n",
		port, 1<<20, filepath.Join(cfg.Dir, "nats-store"))
	if err := os.WriteFile(n.confPath(), []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("write nats config: %w", err)
	}
	if err := n.launch(); err != nil {
		return nil, err
	}
	if err := n.waitReady(ctx, 30*time.Second); err != nil {
		n.Stop()
		return nil, err
	}
	return n, nil
}

func (n *NATS) confPath() string { return filepath.Join(n.cfg.Dir, "nats.conf") }

func (n *NATS) launch() error {
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open nats log: %w", err)
	}
	cmd := exec.Command(n.cfg.Bin, "-c", n.confPath())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, and gone with the harness.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start nats-server: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // a killed server's exit status is the point, not an error
		logFile.Close()
		close(done)
	}()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	return nil
}

// URL is the server's client URL.
func (n *NATS) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// Nodes is 1.
func (n *NATS) Nodes() int { return 1 }

// Kill sends SIGKILL and waits for the server to die.
func (n *NATS) Kill(int) { n.signal(syscall.SIGKILL, time.Minute) }

// Terminate sends SIGTERM (a clean shutdown) and waits up to grace, then kills the server.
func (n *NATS) Terminate(_ int, grace time.Duration) error {
	if !n.signal(syscall.SIGTERM, grace) {
		n.Kill(0)
		return fmt.Errorf("nats-server did not stop within %s of SIGTERM", grace)
	}
	return nil
}

func (n *NATS) signal(sig syscall.Signal, wait time.Duration) bool {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return true
	}
	_ = cmd.Process.Signal(sig) // it may have exited already; done tells
	select {
	case <-done:
		return true
	case <-time.After(wait):
		return false
	}
}

// Restart starts the server again (same port, same storage) after Kill or Terminate and waits
// until JetStream answers.
func (n *NATS) Restart(ctx context.Context, _ int) error {
	if n.Running(0) {
		return errors.New("nats-server is still running")
	}
	if err := n.launch(); err != nil {
		return err
	}
	return n.waitReady(ctx, time.Minute)
}

// Running reports whether the server's process is alive.
func (n *NATS) Running(int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// waitReady waits until the server accepts clients and JetStream answers.
func (n *NATS) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := jetStreamAnswers(ctx, n.URL())
		if err == nil {
			return nil
		}
		if !n.Running(0) {
			return fmt.Errorf("nats-server exited (log %s): %w", n.logPath, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait for nats-server (log %s): %w", n.logPath, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func jetStreamAnswers(ctx context.Context, url string) error {
	nc, err := nats.Connect(url, nats.Timeout(time.Second), nats.MaxReconnects(0))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(actx)
	return err
}

// Stop terminates the server (its storage stays on disk for inspection).
func (n *NATS) Stop() {
	if n.Running(0) {
		_ = n.Terminate(0, 10*time.Second)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
