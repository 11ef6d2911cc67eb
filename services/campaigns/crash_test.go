package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/customertext/webhooks/libs/auth"
	"github.com/customertext/webhooks/libs/event"
	campaignsv1 "github.com/customertext/webhooks/libs/gen/customertext/campaigns/v1"
	"github.com/customertext/webhooks/libs/proctest"
)

// TestKillMidSendAndResume runs the campaigns binary, SIGKILLs it while a campaign is being
// sent, and starts it again: the campaign finishes, every recipient has exactly one message,
// and campaign_sent counts the whole audience.
func TestKillMidSendAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the service and sends to 600 contacts")
	}
	t.Parallel()
	d := newDeps(t)
	const n = 600
	for i := range n {
		d.contacts.Add(acct, fmt.Sprintf("+1555200%04d", i), i%10 == 0, "customers")
	}
	bin := filepath.Join(t.TempDir(), "campaigns")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	// The first process creates the campaign, starts the send and is killed mid-way.
	first := d.startProcess(t, bin)
	ctx := context.Background()
	created, err := first.client.CreateCampaign(ctx, &campaignsv1.CreateCampaignRequest{AccountId: acct, Name: "Crash",
		Body: "hello", TargetGroups: []string{"customers"}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	id := created.GetCampaign().GetId()
	if _, err := first.client.SendCampaign(ctx, &campaignsv1.SendCampaignRequest{AccountId: acct, Id: id}); err != nil {
		t.Fatalf("send: %v", err)
	}
	deadline := time.Now().Add(waitFor)
	for len(d.sandbox(acct)) < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("the send did not start; logs:\n%s", first.logs.String())
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	first.kill()
	var state string
	if err := d.openDB().QueryRow(ctx, `SELECT state FROM campaigns WHERE id = $1`, id).Scan(&state); err != nil {
		t.Fatalf("state: %v", err)
	}
	sentBeforeKill := len(d.sandbox(acct))
	t.Logf("killed with %d of %d messages sent, campaign %s", sentBeforeKill, n-n/10, state)
	if state != "SENDING" {
		t.Logf("the send finished before the kill; the resume path is not exercised by this run")
	}

	d.startProcess(t, bin)
	got := d.waitEvents(acct, event.CampaignSent, 1)[0].Data
	for k, want := range map[string]float64{"audience": n, "sent": n - n/10, "failed": 0, "skipped_opted_out": n / 10} {
		if got[k] != want {
			t.Errorf("campaign_sent %s: got %v, want %v", k, got[k], want)
		}
	}
	per := map[string]int{}
	for _, to := range d.sandbox(acct) {
		per[to]++
	}
	if len(per) != n-n/10 {
		t.Errorf("got messages to %d numbers, want %d", len(per), n-n/10)
	}
	for to, c := range per {
		if c != 1 {
			t.Errorf("%s got %d messages, want 1", to, c)
		}
	}
	if evs := d.events(acct); len(evs) != 1 {
		t.Errorf("got %d events, want one campaign_sent", len(evs))
	}
}

// osProc is the service running as a separate process.
type osProc struct {
	client campaignsv1.CampaignServiceClient
	logs   *syncBuffer
	cmd    *exec.Cmd
	// done is closed when the process has exited.
	done chan struct{}
}

// kill ends the process with SIGKILL: no graceful shutdown, as in a crash.
func (p *osProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (d *deps) startProcess(t *testing.T, bin string) *osProc {
	t.Helper()
	logs := &syncBuffer{}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "NATS_URL="+d.natsURL, "DATABASE_URL="+d.dbURL, "GRPC_ADDR=127.0.0.1:0",
		"ADMIN_ADDR=127.0.0.1:0", "CONTACTS_ADDR="+d.contactsAddr, "SERVICE_TOKEN="+testToken, "SEND_CONCURRENCY=2")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	p := &osProc{logs: logs, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(waitFor):
			_ = cmd.Process.Kill()
			<-p.done
			t.Errorf("campaigns did not stop on SIGTERM")
		}
	})
	addr := proctest.WaitForAddr(t, logs, p.done, waitFor)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.Bearer(testToken)))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	p.client = campaignsv1.NewCampaignServiceClient(conn)
	return p
}
