package chaos

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestNATSKeepsItsDataAcrossKillAndTerminate: the nats-server process comes back on the same
// port with the messages it had stored, after SIGKILL and after SIGTERM.
func TestNATSKeepsItsDataAcrossKillAndTerminate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "nats-server")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
		t.Fatalf("build nats-server: %v\n%s", err, out)
	}
	n, err := StartNATS(ctx, NATSConfig{Bin: bin, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	count := func() uint64 {
		t.Helper()
		nc, err := nats.Connect(n.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}, Storage: jetstream.FileStorage})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, "s", []byte("x")); err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	if got := count(); got != 1 {
		t.Fatalf("got %d messages, want 1", got)
	}
	n.Kill(0)
	if n.Running(0) {
		t.Fatal("still running after Kill")
	}
	if err := n.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 2 {
		t.Errorf("after SIGKILL: got %d messages, want 2", got)
	}
	if err := n.Terminate(0, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := n.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 3 {
		t.Errorf("after SIGTERM: got %d messages, want 3", got)
	}
}
