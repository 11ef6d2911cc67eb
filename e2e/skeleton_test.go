package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customertext/webhooks/e2e/devstack"
	"github.com/customertext/webhooks/libs/event"
	"github.com/customertext/webhooks/libs/pgtest"
	"github.com/customertext/webhooks/libs/signing"
)

// built holds the service binaries, compiled once for every test of this package that needs them
// and removed by TestMain.
var built struct {
	once sync.Once
	dir  string
	err  error
}

// buildServices returns a folder with every service binary, compiled on first use.
func buildServices(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "e2e-services-"); built.err != nil {
			return
		}
		for _, name := range devstack.Services() {
			cmd := exec.Command("go", "build", "-o", filepath.Join(built.dir, name), ".")
			cmd.Dir = filepath.Join("..", "services", name)
			cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
			if out, err := cmd.CombinedOutput(); err != nil {
				built.err = fmt.Errorf("build %s: %w\n%s", name, err, out)
				return
			}
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.dir
}

func startStack(ctx context.Context, t *testing.T, cfg devstack.Config) *devstack.Stack {
	t.Helper()
	if cfg.BinDir == "" {
		cfg.BinDir = buildServices(t)
	}
	cfg.DataDir = t.TempDir()
	cfg.DatabaseURL = pgtest.NewDatabase(t)
	s, err := devstack.Start(ctx, cfg)
	if err != nil {
		dumpLogs(t, cfg.DataDir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if errs := s.Stop(); len(errs) > 0 {
			t.Errorf("stop stack: %v", errs)
		}
		if t.Failed() {
			dumpLogs(t, cfg.DataDir)
		}
	})
	return s
}

func dumpLogs(t *testing.T, dataDir string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dataDir, "logs", "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		lines := strings.Split(string(b), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		t.Logf("--- %s (tail)\n%s", filepath.Base(l), strings.Join(lines, "\n"))
	}
}

// TestWalkingSkeleton drives one real event through every real component: contacts (gRPC,
// PostgreSQL outbox) → relay → JetStream → dispatcher (index fed by subscriptions) → an HTTP
// receiver on loopback, and checks what the receiver got.
func TestWalkingSkeleton(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stack := startStack(ctx, t, devstack.Config{})
	rcv, err := devstack.StartReceiver("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()

	demo, err := devstack.RunDemo(ctx, stack, rcv)
	if err != nil {
		t.Fatal(err)
	}
	req := demo.Request

	var env event.Envelope
	if err := json.Unmarshal(req.Body, &env); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, req.Body)
	}
	if env.Event != event.NewContact || env.AccountID != demo.AccountID || !strings.HasPrefix(env.EventID, "evt_") || env.Test {
		t.Errorf("envelope: got %+v, want a real new_contact of account %s", env, demo.AccountID)
	}
	if _, err := time.Parse(time.RFC3339, env.Timestamp); err != nil {
		t.Errorf("timestamp %q: %v", env.Timestamp, err)
	}
	var data map[string]any
	if err := json.Unmarshal(env.Data, &data); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"contact_id": demo.ContactID, "first_name": "Jane", "last_name": "Smith",
		"email": "jane@example.com", "source": "manual"} {
		if data[k] != want {
			t.Errorf("data.%s: got %v, want %v", k, data[k], want)
		}
	}
	if phone, _ := data["phone"].(string); phone != "+15551234567" {
		t.Errorf("data.phone: got %v, want +15551234567 (E.164 of (555) 123-4567)", data["phone"])
	}

	for k, want := range map[string]string{
		"Authorization": "Bearer " + demo.BearerToken,
		"Content-Type":  "application/json",
		"Webhook-Id":    env.EventID,
	} {
		if got := req.Header.Get(k); got != want {
			t.Errorf("header %s: got %q, want %q", k, got, want)
		}
	}
	if ua := req.Header.Get("User-Agent"); !strings.HasPrefix(ua, "CustomerText-Webhooks/") {
		t.Errorf("User-Agent: got %q", ua)
	}
	secret, err := signing.ParseSecret(demo.SigningSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := signing.Verify(secret, req.Header, req.Body, time.Now(), 5*time.Minute); err != nil {
		t.Errorf("signature: %v", err)
	}
}
