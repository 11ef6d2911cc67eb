package sms_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/customertext/webhooks/libs/pgtest"
	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/libs/sms"
)

func newSandbox(t *testing.T) *sms.Sandbox {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pool, err := postgres.Open(ctx, pgtest.NewDatabase(t), "caller", 4)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(pool.Close)
	if err := sms.MigrateSandbox(ctx, pool, "caller"); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return sms.NewSandbox(pool)
}

func TestSandbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sb := newSandbox(t)

	first, err := sb.Send(ctx, sms.Message{AccountID: "acc1", From: "+15550000001", To: "+15551230001", Body: "hello", IdempotencyKey: "k1"})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if first.Duplicate || first.ID == "" {
		t.Fatalf("first send: got duplicate=%v id=%q, want a new message", first.Duplicate, first.ID)
	}
	again, err := sb.Send(ctx, sms.Message{AccountID: "acc1", From: "+15550000001", To: "+15551230001", Body: "hello", IdempotencyKey: "k1"})
	if err != nil {
		t.Fatalf("send again: %v", err)
	}
	if !again.Duplicate || again.ID != first.ID {
		t.Errorf("repeated key: got duplicate=%v id=%q, want duplicate of %q", again.Duplicate, again.ID, first.ID)
	}
	// No key: every send is recorded.
	for range 2 {
		if _, err := sb.Send(ctx, sms.Message{AccountID: "acc1", To: "+15551230002", Body: "no key"}); err != nil {
			t.Fatalf("send without key: %v", err)
		}
	}
	if _, err := sb.Send(ctx, sms.Message{AccountID: "acc2", To: "+15551230001", Body: "other account"}); err != nil {
		t.Fatalf("send other account: %v", err)
	}

	tests := []struct {
		name, account, to string
		want              []string
	}{
		{"all of account", "acc1", "", []string{"hello", "no key", "no key"}},
		{"one recipient", "acc1", "+15551230001", []string{"hello"}},
		{"other account", "acc2", "", []string{"other account"}},
		{"unknown account", "acc3", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sb.List(ctx, tc.account, tc.to)
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			var bodies []string
			for _, m := range got {
				bodies = append(bodies, m.Body)
				if m.AccountID != tc.account {
					t.Errorf("got account %q, want %q", m.AccountID, tc.account)
				}
			}
			if strings.Join(bodies, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got bodies %q, want %q", bodies, tc.want)
			}
		})
	}
}

func TestSandboxRefusesInvalidMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sb := newSandbox(t)
	tests := []struct {
		name string
		msg  sms.Message
	}{
		{"no account", sms.Message{To: "+15551230001", Body: "x"}},
		{"not E.164", sms.Message{AccountID: "a", To: "5551230001", Body: "x"}},
		{"too short", sms.Message{AccountID: "a", To: "+1555", Body: "x"}},
		{"bad sender", sms.Message{AccountID: "a", From: "shortcode", To: "+15551230001", Body: "x"}},
		{"empty body", sms.Message{AccountID: "a", To: "+15551230001"}},
		{"long body", sms.Message{AccountID: "a", To: "+15551230001", Body: strings.Repeat("é", sms.MaxBodyChars+1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sb.Send(ctx, tc.msg)
			if !errors.Is(err, sms.ErrInvalidMessage) {
				t.Errorf("got error %v, want ErrInvalidMessage", err)
			}
		})
	}
	got, err := sb.List(ctx, "a", "")
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("got %d recorded messages after refusals, want 0", len(got))
	}
	// The limit is in characters, not bytes.
	if _, err := sb.Send(ctx, sms.Message{AccountID: "a", To: "+15551230001", Body: strings.Repeat("é", sms.MaxBodyChars)}); err != nil {
		t.Errorf("send %d two-byte characters: got %v, want accepted", sms.MaxBodyChars, err)
	}
}
