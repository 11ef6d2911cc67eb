package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/customertext/webhooks/libs/auth"
	"github.com/customertext/webhooks/libs/event"
	campaignsv1 "github.com/customertext/webhooks/libs/gen/customertext/campaigns/v1"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
)

func startRealContacts(t *testing.T, natsURL, dbURL string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "contacts")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "contacts")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the contacts service: %v\n%s", err, out)
	}
	logs := &syncBuffer{}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "NATS_URL="+natsURL, "DATABASE_URL="+dbURL, "GRPC_ADDR=127.0.0.1:0",
		"ADMIN_ADDR=127.0.0.1:0", "SERVICE_TOKEN="+testToken, "LOG_FORMAT=json")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start contacts: %v", err)
	}
	var waitErr error
	done := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			if waitErr != nil {
				t.Errorf("contacts exited with %v; logs:\n%s", waitErr, logs.String())
			}
		case <-time.After(waitFor):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("contacts did not stop on SIGTERM")
		}
	})
	return waitForAddr(t, logs, done)
}

// TestCampaignWithRealContactsService sends a campaign to an audience held by the real contacts
// service: group membership, opt-out and paging come from it.
func TestCampaignWithRealContactsService(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the contacts service")
	}
	t.Parallel()
	var contactsAddr string
	d := newDepsWith(t, func(t *testing.T, natsURL, dbURL string) string {
		contactsAddr = startRealContacts(t, natsURL, dbURL)
		return contactsAddr
	})
	conn, err := grpc.NewClient(contactsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.Bearer(testToken)))
	if err != nil {
		t.Fatalf("contacts client: %v", err)
	}
	defer conn.Close()
	contacts := contactsv1.NewContactServiceClient(conn)
	ctx := context.Background()
	for _, c := range []struct {
		phone    string
		groups   []string
		optedOut bool
	}{
		{"+15551230001", []string{"customers"}, false},
		{"+15551230002", []string{"customers"}, true},
		{"+15551230003", []string{"customers", "vip"}, false},
		{"+15551230004", []string{"staff"}, false},
	} {
		resp, err := contacts.CreateContact(ctx, &contactsv1.CreateContactRequest{AccountId: acct,
			Contact: &contactsv1.Contact{Phone: c.phone, Groups: c.groups}})
		if err != nil {
			t.Fatalf("create contact: %v", err)
		}
		if c.optedOut {
			if _, err := contacts.SetOptOut(ctx, &contactsv1.SetOptOutRequest{AccountId: acct, ContactId: resp.GetContact().GetId(), OptedOut: true}); err != nil {
				t.Fatalf("opt out: %v", err)
			}
		}
	}

	p := d.start(nil)
	created, err := p.client.CreateCampaign(ctx, &campaignsv1.CreateCampaignRequest{AccountId: acct, Name: "Real",
		Body: "hello", TargetGroups: []string{"customers", "vip"}})
	if err != nil {
		t.Fatalf("create campaign: %v", err)
	}
	if _, err := p.client.SendCampaign(ctx, &campaignsv1.SendCampaignRequest{AccountId: acct, Id: created.GetCampaign().GetId()}); err != nil {
		t.Fatalf("send: %v", err)
	}
	got := d.waitEvents(acct, event.CampaignSent, 1)[0].Data
	for k, want := range map[string]float64{"audience": 3, "sent": 2, "failed": 0, "skipped_opted_out": 1} {
		if got[k] != want {
			t.Errorf("campaign_sent %s: got %v, want %v", k, got[k], want)
		}
	}
	if want := []string{"+15551230001", "+15551230003"}; strings.Join(sorted(d.sandbox(acct)), ",") != strings.Join(want, ",") {
		t.Errorf("got messages to %v, want %v", d.sandbox(acct), want)
	}
}

// waitForAddr waits for a process to log its gRPC address ("grpc_addr").
func waitForAddr(t *testing.T, logs *syncBuffer, exited <-chan struct{}) string {
	t.Helper()
	deadline := time.Now().Add(waitFor)
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
