package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/customertext/webhooks/libs/event"
	campaignsv1 "github.com/customertext/webhooks/libs/gen/customertext/campaigns/v1"
)

const acct = "acct_1"

// TestCampaignSentEndToEnd: a campaign to two overlapping groups is sent to each distinct
// member once, skips the opted-out one, counts a provider refusal as failed, and campaign_sent
// with the counts and times reaches the EVENTS stream.
func TestCampaignSentEndToEnd(t *testing.T) {
	t.Parallel()
	d := newDeps(t)
	d.contacts.Add(acct, "+15551230001", false, "customers")
	d.contacts.Add(acct, "+15551230002", true, "customers") // opted out: skipped
	d.contacts.Add(acct, "+15551230003", false, "customers", "vip")
	d.contacts.Add(acct, "+1555", false, "vip") // the provider refuses it: failed
	d.contacts.Add(acct, "+15551230005", false, "staff")
	d.contacts.Add("acct_2", "+15551230006", false, "customers")
	p := d.start(nil)
	ctx := context.Background()

	created, err := p.client.CreateCampaign(ctx, &campaignsv1.CreateCampaignRequest{AccountId: acct, Name: "Spring sale",
		Body: "20% off this weekend. Reply STOP to opt out.", TargetGroups: []string{"customers", "vip"}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	c := created.GetCampaign()
	if c.GetState() != campaignsv1.CampaignState_CAMPAIGN_STATE_DRAFT || !strings.HasPrefix(c.GetId(), "cmp_") {
		t.Fatalf("got state %v id %q, want a DRAFT with a cmp_ id", c.GetState(), c.GetId())
	}
	sent, err := p.client.SendCampaign(ctx, &campaignsv1.SendCampaignRequest{AccountId: acct, Id: c.GetId()})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if got := sent.GetCampaign().GetState(); got != campaignsv1.CampaignState_CAMPAIGN_STATE_SENDING {
		t.Errorf("SendCampaign: got state %v, want SENDING", got)
	}

	evs := d.waitEvents(acct, event.CampaignSent, 1)
	got := evs[0]
	if got.MsgID != got.Env.EventID || got.Subject != "events."+acct+".campaign_sent" {
		t.Errorf("got subject %q Nats-Msg-Id %q, want events.%s.campaign_sent and %q", got.Subject, got.MsgID, acct, got.Env.EventID)
	}
	start, err1 := time.Parse(time.RFC3339Nano, got.Data["started_at"].(string))
	finish, err2 := time.Parse(time.RFC3339Nano, got.Data["finished_at"].(string))
	if err1 != nil || err2 != nil || finish.Before(start) {
		t.Errorf("got started_at %v finished_at %v (%v, %v), want RFC 3339 times in order", got.Data["started_at"], got.Data["finished_at"], err1, err2)
	}
	want := map[string]any{"campaign_id": c.GetId(), "name": "Spring sale", "audience": 4.0, "sent": 2.0, "failed": 1.0,
		"skipped_opted_out": 1.0, "started_at": got.Data["started_at"], "finished_at": got.Data["finished_at"]}
	if diff := cmp.Diff(want, got.Data); diff != "" {
		t.Errorf("campaign_sent data (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"+15551230001", "+15551230003"}, sorted(d.sandbox(acct))); diff != "" {
		t.Errorf("messages sent (-want +got):\n%s", diff)
	}

	g, err := p.client.GetCampaign(ctx, &campaignsv1.GetCampaignRequest{AccountId: acct, Id: c.GetId()})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	gc := g.GetCampaign()
	if gc.GetState() != campaignsv1.CampaignState_CAMPAIGN_STATE_SENT || gc.GetAudience() != 4 || gc.GetSent() != 2 ||
		gc.GetFailed() != 1 || gc.GetSkippedOptedOut() != 1 || gc.GetStartTime() == nil || gc.GetFinishTime() == nil {
		t.Errorf("got campaign %v, want SENT 4/2/1/1 with times", gc)
	}

	// Sending again changes nothing.
	again, err := p.client.SendCampaign(ctx, &campaignsv1.SendCampaignRequest{AccountId: acct, Id: c.GetId()})
	if err != nil || again.GetCampaign().GetState() != campaignsv1.CampaignState_CAMPAIGN_STATE_SENT {
		t.Errorf("second send: got %v, %v, want the SENT campaign", again.GetCampaign().GetState(), err)
	}
	if n := len(d.sandbox(acct)); n != 2 {
		t.Errorf("after a second send: got %d messages, want 2", n)
	}
	m := metrics(t, p.admin)
	for _, line := range []string{`campaigns_recipients_total{result="sent"} 2`, `campaigns_recipients_total{result="failed"} 1`,
		`campaigns_recipients_total{result="skipped"} 1`} {
		if !strings.Contains(m, line) {
			t.Errorf("metrics: missing %q", line)
		}
	}
	if n := len(d.events(acct)); n != 1 {
		t.Errorf("got %d events, want 1 campaign_sent", n)
	}
}

// TestResumeAfterCrash: a campaign left SENDING by a crash (one recipient recorded, one sent by
// the provider but not recorded, one not yet sent) is resumed by the next process at start-up;
// nobody gets the campaign twice and campaign_sent counts the whole audience.
func TestResumeAfterCrash(t *testing.T) {
	t.Parallel()
	d := newDeps(t)
	ids := []string{
		d.contacts.Add(acct, "+15551230001", false, "customers"),
		d.contacts.Add(acct, "+15551230002", true, "customers"),
		d.contacts.Add(acct, "+15551230003", false, "customers"),
		d.contacts.Add(acct, "+15551230004", false, "customers"),
	}
	p1 := d.start(nil)
	created, err := p1.client.CreateCampaign(context.Background(), &campaignsv1.CreateCampaignRequest{AccountId: acct, Name: "Resume",
		Body: "hello", TargetGroups: []string{"customers"}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	id := created.GetCampaign().GetId()
	if err := p1.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// The state a crash mid-send leaves behind.
	db := d.openDB()
	ctx := context.Background()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE campaigns SET state = 'SENDING', start_time = now(), audience_resolved = true WHERE id = $1`, []any{id}},
		{`INSERT INTO recipients (campaign_id, contact_id, phone, state) VALUES
			($1, $2, '+15551230001', 'sent'), ($1, $3, '+15551230002', 'skipped'),
			($1, $4, '+15551230003', 'pending'), ($1, $5, '+15551230004', 'pending')`, []any{id, ids[0], ids[1], ids[2], ids[3]}},
		{`INSERT INTO sandbox_messages (id, account_id, sender, recipient, body, idempotency_key) VALUES
			('sms_a', $1, '', '+15551230001', 'hello', $2), ('sms_b', $1, '', '+15551230003', 'hello', $3)`,
			[]any{acct, id + ":" + ids[0], id + ":" + ids[2]}},
	} {
		if _, err := db.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}

	d.start(nil)
	evs := d.waitEvents(acct, event.CampaignSent, 1)
	for k, want := range map[string]float64{"audience": 4, "sent": 3, "failed": 0, "skipped_opted_out": 1} {
		if got := evs[0].Data[k]; got != want {
			t.Errorf("campaign_sent %s: got %v, want %v", k, got, want)
		}
	}
	if diff := cmp.Diff([]string{"+15551230001", "+15551230003", "+15551230004"}, sorted(d.sandbox(acct))); diff != "" {
		t.Errorf("messages sent (-want +got):\n%s", diff)
	}
}

// TestCampaignAPI covers validation, unknown campaigns and authentication.
func TestCampaignAPI(t *testing.T) {
	t.Parallel()
	d := newDeps(t)
	p := d.start(nil)
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want codes.Code
		msg  string
	}{
		{"create without account", func() error {
			_, err := p.client.CreateCampaign(ctx, &campaignsv1.CreateCampaignRequest{Name: "n", Body: "b", TargetGroups: []string{"g"}})
			return err
		}, codes.InvalidArgument, "account_id"},
		{"create without body", func() error {
			_, err := p.client.CreateCampaign(ctx, &campaignsv1.CreateCampaignRequest{AccountId: acct, Name: "n", TargetGroups: []string{"g"}})
			return err
		}, codes.InvalidArgument, "body"},
		{"create without groups", func() error {
			_, err := p.client.CreateCampaign(ctx, &campaignsv1.CreateCampaignRequest{AccountId: acct, Name: "n", Body: "b"})
			return err
		}, codes.InvalidArgument, "target_groups"},
		{"create body too long", func() error {
			_, err := p.client.CreateCampaign(ctx, &campaignsv1.CreateCampaignRequest{AccountId: acct, Name: "n", Body: strings.Repeat("b", 1601), TargetGroups: []string{"g"}})
			return err
		}, codes.InvalidArgument, "body"},
		{"send without id", func() error {
			_, err := p.client.SendCampaign(ctx, &campaignsv1.SendCampaignRequest{AccountId: acct})
			return err
		}, codes.InvalidArgument, "id"},
		{"send unknown", func() error {
			_, err := p.client.SendCampaign(ctx, &campaignsv1.SendCampaignRequest{AccountId: acct, Id: "cmp_nope"})
			return err
		}, codes.NotFound, "cmp_nope"},
		{"get unknown", func() error {
			_, err := p.client.GetCampaign(ctx, &campaignsv1.GetCampaignRequest{AccountId: acct, Id: "cmp_nope"})
			return err
		}, codes.NotFound, "cmp_nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if got := status.Code(err); got != tc.want {
				t.Fatalf("got %v (%v), want %v", got, err, tc.want)
			}
			if !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Errorf("got message %q, want it to mention %q", status.Convert(err).Message(), tc.msg)
			}
		})
	}

	// Another account cannot see or send the campaign.
	created, err := p.client.CreateCampaign(ctx, &campaignsv1.CreateCampaignRequest{AccountId: acct, Name: "n", Body: "b", TargetGroups: []string{"g"}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := p.client.SendCampaign(ctx, &campaignsv1.SendCampaignRequest{AccountId: "acct_2", Id: created.GetCampaign().GetId()}); status.Code(err) != codes.NotFound {
		t.Errorf("send from another account: got %v, want NotFound", err)
	}

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + p.admin + path)
		if err != nil {
			t.Fatalf("get %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: got %d, want 200", path, resp.StatusCode)
		}
	}

	conn, err := grpc.NewClient(p.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer conn.Close()
	_, err = campaignsv1.NewCampaignServiceClient(conn).GetCampaign(ctx, &campaignsv1.GetCampaignRequest{AccountId: acct, Id: created.GetCampaign().GetId()})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("without credential: got %v, want Unauthenticated", err)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
	}{
		{"no token", map[string]string{}, nil, "SERVICE_TOKEN"},
		{"bad concurrency", map[string]string{"SERVICE_TOKEN": "x", "SEND_CONCURRENCY": "0"}, nil, "SEND_CONCURRENCY"},
		{"bad address", map[string]string{"SERVICE_TOKEN": "x"}, []string{"-grpc-addr", "nope"}, "GRPC_ADDR"},
		{"contacts as a gRPC dns target", map[string]string{"SERVICE_TOKEN": "x", "CONTACTS_ADDR": "dns:///contacts-headless:7101"}, []string{"-send-concurrency", "4"}, ""},
		{"pprof on a public address", map[string]string{"SERVICE_TOKEN": "x", "PPROF_ADDR": "0.0.0.0:6060"}, nil, "PPROF_ADDR"},
		{"flag beats env", map[string]string{"SERVICE_TOKEN": "x", "SEND_CONCURRENCY": "nope"}, []string{"-send-concurrency", "4"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			cfg, err := parseConfig(tc.args, func(k string) string { return tc.env[k] }, &out)
			if tc.wantErr == "" {
				if err != nil || cfg.SendConcurrency != 4 || cfg.GRPCAddr != "127.0.0.1:7103" {
					t.Errorf("got %+v, %v; want concurrency 4 and the default gRPC address", cfg, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got error %v, want one naming %s", err, tc.wantErr)
			}
		})
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
