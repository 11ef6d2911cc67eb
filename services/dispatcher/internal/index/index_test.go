package index

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/signing"
)

func hook(id, account string, version int64, enabled bool, types ...string) Webhook {
	return Webhook{ID: id, AccountID: account, URL: "https://x.example/" + id, Endpoint: "https://x.example/" + id,
		EventTypes: types, Enabled: enabled, Version: version}
}

func ids(ws []Webhook) []string {
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.ID)
	}
	sort.Strings(out)
	return out
}

func TestMatchAndUpsert(t *testing.T) {
	t.Parallel()
	x := New()
	x.Upsert(hook("w1", "a1", 1, true, "new_contact", "inbound_message"))
	x.Upsert(hook("w2", "a1", 1, true, "new_contact"))
	x.Upsert(hook("w3", "a1", 1, false, "new_contact"))
	x.Upsert(hook("w4", "a2", 1, true, "new_contact"))

	tests := []struct {
		name         string
		account, typ string
		want         []string
		mutate       func()
	}{
		{name: "enabled webhooks of the account and type", account: "a1", typ: "new_contact", want: []string{"w1", "w2"}},
		{name: "other type", account: "a1", typ: "inbound_message", want: []string{"w1"}},
		{name: "no match", account: "a1", typ: "campaign_sent", want: []string{}},
		{name: "an older version is ignored", account: "a1", typ: "new_contact", want: []string{"w1", "w2"},
			mutate: func() { x.Upsert(hook("w2", "a1", 0, false, "new_contact")) }},
		{name: "a newer version replaces", account: "a1", typ: "new_contact", want: []string{"w1"},
			mutate: func() { x.Upsert(hook("w2", "a1", 2, true, "campaign_sent")) }},
		{name: "enabling adds", account: "a1", typ: "new_contact", want: []string{"w1", "w3"},
			mutate: func() { x.Upsert(hook("w3", "a1", 2, true, "new_contact")) }},
		{name: "removal", account: "a1", typ: "new_contact", want: []string{"w3"},
			mutate: func() { x.Remove("w1") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mutate != nil {
				tc.mutate()
			}
			if diff := cmp.Diff(tc.want, ids(x.Match(tc.account, tc.typ))); diff != "" {
				t.Errorf("Match(%s, %s) (-want +got):\n%s", tc.account, tc.typ, diff)
			}
		})
	}
	if !x.Deleted("w1") {
		t.Errorf("Deleted(w1): got false, want true")
	}
}

func TestReplace(t *testing.T) {
	t.Parallel()
	x := New()
	clk := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	x.now = func() time.Time { return clk }

	x.Upsert(hook("old", "a", 1, true, "new_contact"))
	x.Upsert(hook("kept", "a", 5, true, "new_contact"))
	x.Upsert(hook("deleted_during_listing", "a", 1, true, "new_contact"))
	clk = clk.Add(time.Second)
	started := clk
	clk = clk.Add(time.Second)
	// Learned of while the listing ran: must survive a listing that does not contain it.
	x.Upsert(hook("fresh", "a", 1, true, "new_contact"))
	x.Remove("deleted_during_listing")
	select {
	case <-x.Ready():
		t.Fatal("Ready closed before the first full load")
	default:
	}

	x.Replace([]Webhook{
		hook("kept", "a", 4, false, "new_contact"), // stale listing of a newer version we hold
		hook("deleted_during_listing", "a", 1, true, "new_contact"),
		hook("new", "a", 1, true, "new_contact"),
	}, started)

	if diff := cmp.Diff([]string{"fresh", "kept", "new"}, ids(x.Match("a", "new_contact"))); diff != "" {
		t.Errorf("after Replace (-want +got):\n%s", diff)
	}
	if w, ok := x.Get("kept"); !ok || w.Version != 5 {
		t.Errorf("kept: got version %d ok=%v, want 5", w.Version, ok)
	}
	if _, ok := x.Get("old"); ok || !x.Deleted("old") {
		t.Errorf("old: got present=%v deleted=%v, want removed", ok, x.Deleted("old"))
	}
	if !x.Loaded() {
		t.Errorf("Loaded: got false, want true")
	}
	select {
	case <-x.Ready():
	default:
		t.Error("Ready not closed after the first full load")
	}
}

func TestFromProto(t *testing.T) {
	t.Parallel()
	_, cur, _ := signing.NewSecret()
	_, prev, _ := signing.NewSecret()
	now := time.Now()
	valid := func() *webhooksv1.WebhookConfig {
		return &webhooksv1.WebhookConfig{Id: "wh_1", AccountId: "acc", Url: "https://hooks.example.com:8443/x",
			EventTypes: []string{"new_contact"}, Enabled: true, TimeoutMs: 3000, Version: 7,
			Secrets: []*webhooksv1.SigningSecret{{Secret: cur}, {Secret: prev, ExpireTime: timestamppb.New(now.Add(time.Hour))}}}
	}
	w, err := FromProto(valid())
	if err != nil {
		t.Fatalf("valid config: %v", err)
	}
	if w.Endpoint != "https://hooks.example.com:8443/x" || w.Timeout != 3*time.Second || w.Version != 7 {
		t.Errorf("got endpoint %q timeout %s version %d", w.Endpoint, w.Timeout, w.Version)
	}
	withQuery := valid()
	withQuery.Url = "https://hooks.example.com:8443/x?zap=1"
	if w2, err := FromProto(withQuery); err != nil || w2.Endpoint != w.Endpoint {
		t.Errorf("a query string is not part of the endpoint: got %q (%v), want %q", w2.Endpoint, err, w.Endpoint)
	}
	if n := len(w.SigningSecrets(now)); n != 2 {
		t.Errorf("signing secrets during the overlap: got %d, want 2", n)
	}
	if n := len(w.SigningSecrets(now.Add(2 * time.Hour))); n != 1 {
		t.Errorf("signing secrets after the overlap: got %d, want 1", n)
	}
	if w.SendTraceContext {
		t.Error("send_trace_context unset: got SendTraceContext true, want false")
	}
	withTrace := valid()
	withTrace.SendTraceContext = true
	if w2, err := FromProto(withTrace); err != nil || !w2.SendTraceContext {
		t.Errorf("send_trace_context set: got SendTraceContext %v (%v), want true", w2.SendTraceContext, err)
	}
	if s := w.String(); strings.Contains(s, cur) {
		t.Errorf("String leaks the secret: %s", s)
	}

	bad := []struct {
		name   string
		mutate func(c *webhooksv1.WebhookConfig)
	}{
		{"missing id", func(c *webhooksv1.WebhookConfig) { c.Id = "" }},
		{"id not a subject token", func(c *webhooksv1.WebhookConfig) { c.Id = "a.b" }},
		{"missing account", func(c *webhooksv1.WebhookConfig) { c.AccountId = "" }},
		{"relative url", func(c *webhooksv1.WebhookConfig) { c.Url = "/x" }},
		{"ftp url", func(c *webhooksv1.WebhookConfig) { c.Url = "ftp://x.example/" }},
		{"bad secret", func(c *webhooksv1.WebhookConfig) { c.Secrets[0].Secret = "nope-supersecret" }},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(c)
			_, err := FromProto(c)
			if err == nil {
				t.Fatal("got no error, want one")
			}
			if strings.Contains(err.Error(), "supersecret") || strings.Contains(err.Error(), cur) {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
}
