// Package proctest runs a service's real binary as a process in tests: it builds the service,
// starts it with extra environment, waits for the address it logs, and stops it with SIGTERM when
// the test ends, failing the test if it does not stop cleanly.
package proctest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Buffer collects a process's output; safe for concurrent writes and reads.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Build builds the main package in dir and returns the path of the binary, named name.
func Build(t testing.TB, dir, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", dir, err, out)
	}
	return bin
}

// StartService builds the service in dir, runs it with env added to this process's environment
// (it must log JSON), and returns the gRPC address it logs ("grpc_addr"). When the test ends it
// is stopped with SIGTERM; a failed exit, or none within timeout, fails the test.
func StartService(t testing.TB, dir string, env []string, timeout time.Duration) string {
	t.Helper()
	name := filepath.Base(dir)
	logs := &Buffer{}
	cmd := exec.Command(Build(t, dir, name))
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	var waitErr error
	done := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			if waitErr != nil {
				t.Errorf("%s exited with %v; logs:\n%s", name, waitErr, logs.String())
			}
		case <-time.After(timeout):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("%s did not stop on SIGTERM", name)
		}
	})
	return WaitForAddr(t, logs, done, timeout)
}

// WaitForAddr waits for a process to log its gRPC address ("grpc_addr" in a JSON line) and
// returns it; it fails the test if exited closes first or timeout passes.
func WaitForAddr(t testing.TB, logs *Buffer, exited <-chan struct{}, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for line := range strings.SplitSeq(logs.String(), "\n") {
			var l struct {
				GRPC string `json:"grpc_addr"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.GRPC != "" {
				return l.GRPC
			}
		}
		select {
		case <-exited:
			t.Fatalf("process exited early; logs:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("process did not log its address; logs:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond) // polling the log for a condition, not synchronising
	}
}
