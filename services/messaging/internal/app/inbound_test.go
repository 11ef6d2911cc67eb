package app_test

import (
	"context"
	"errors"
	"github.com/customertext/webhooks/libs/secrets"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/customertext/webhooks/libs/auth"
	"github.com/customertext/webhooks/libs/contactstest"
	"github.com/customertext/webhooks/libs/event"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	"github.com/customertext/webhooks/libs/pgtest"
	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/libs/sms"
	"github.com/customertext/webhooks/libs/telemetry"
	"github.com/customertext/webhooks/services/messaging/internal/adapters"
	"github.com/customertext/webhooks/services/messaging/internal/app"
	"github.com/customertext/webhooks/services/messaging/internal/domain"
)

const (
	acct      = "acct_1"
	number    = "+15557654321"
	janePhone = "+15551234567"
	token     = "carrier-token"
)

type nopMetrics struct{}

func (nopMetrics) Inbound(domain.Kind) {}
func (nopMetrics) SignatureFailure()   {}
func (nopMetrics) ReplySent()          {}

// flaky fails the first n sends, as a provider outage would.
type flaky struct {
	inner sms.Provider
	n     atomic.Int32
}

func (f *flaky) Send(ctx context.Context, m sms.Message) (sms.Sent, error) {
	if f.n.Add(-1) >= 0 {
		return sms.Sent{}, errors.New("provider unavailable")
	}
	return f.inner.Send(ctx, m)
}

type fixture struct {
	svc      *app.Service
	pool     *pgxpool.Pool
	sandbox  *sms.Sandbox
	contacts *contactstest.Server
}

// newFixture wires the real store on a fresh database and the fake contacts service over real
// gRPC; provider wraps the sandbox.
func newFixture(t *testing.T, provider func(*sms.Sandbox) sms.Provider) fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pool, err := postgres.Open(ctx, pgtest.NewDatabase(t), adapters.Schema, 20)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(pool.Close)
	if err := adapters.Migrate(ctx, pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	tr, err := telemetry.NewTracing(ctx, "test", "dev", "")
	if err != nil {
		t.Fatalf("tracing: %v", err)
	}
	fake, addr := contactstest.Start(t, "svc")
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(auth.Bearer("svc")))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	sandbox := sms.NewSandbox(pool)
	svc := app.NewService(adapters.NewStore(pool, tr, testKeyring(t)), adapters.NewContacts(contactsv1.NewContactServiceClient(conn)),
		provider(sandbox), sandbox, nopMetrics{}, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Config{})
	if err := svc.RegisterNumber(ctx, acct, number, token); err != nil {
		t.Fatalf("register: %v", err)
	}
	return fixture{svc: svc, pool: pool, sandbox: sandbox, contacts: fake}
}

func valid(tok string) bool { return tok == token }

// outboxEvents returns the event types in the outbox, in order.
func (f fixture) outboxEvents(t *testing.T) []string {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT body FROM outbox ORDER BY seq`)
	if err != nil {
		t.Fatalf("outbox: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatalf("scan: %v", err)
		}
		env, err := event.Parse(b)
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		out = append(out, env.Event)
	}
	return out
}

// TestOptOutSurvivesAFailureAfterTheContactChanged: the contact is opted out, then sending the
// confirmation fails and the carrier retries. The retry finds the contact already opted out,
// yet the journal remembers that this message changed it: the confirmation is sent once and
// contact_opt_out is emitted once.
func TestOptOutSurvivesAFailureAfterTheContactChanged(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(sb *sms.Sandbox) sms.Provider { p := &flaky{inner: sb}; p.n.Store(1); return p })
	f.contacts.Add(acct, janePhone, false)
	ctx := context.Background()
	in := app.Inbound{From: janePhone, To: number, Body: "STOP", MessageSid: "SM1"}

	if _, err := f.svc.HandleInbound(ctx, in, valid); err == nil {
		t.Fatalf("first attempt: got nil error, want the provider failure")
	}
	if c, _ := f.contacts.Contact(acct, janePhone); !c.GetOptedOut() {
		t.Fatalf("after the first attempt: got opted_out false, want true")
	}
	if got := f.outboxEvents(t); len(got) != 0 {
		t.Fatalf("after the failed attempt: got events %v, want none", got)
	}
	res, err := f.svc.HandleInbound(ctx, in, valid)
	if err != nil || res.Duplicate || res.Kind != domain.KindOptOut {
		t.Fatalf("retry: got %+v, %v; want a handled opt-out", res, err)
	}
	if got, want := f.outboxEvents(t), []string{event.InboundMessage, event.ContactOptOut}; !equal(got, want) {
		t.Errorf("got events %v, want %v", got, want)
	}
	sent, err := f.sandbox.List(ctx, acct, janePhone)
	if err != nil || len(sent) != 1 || sent[0].Body != domain.ReplyOptOut {
		t.Errorf("got replies %+v (%v), want one opt-out confirmation", sent, err)
	}
	// A retry after success is a duplicate.
	if res, err := f.svc.HandleInbound(ctx, in, valid); err != nil || !res.Duplicate {
		t.Errorf("retry after success: got %+v, %v; want Duplicate", res, err)
	}
}

// TestContactsOutageIsRetried: while contacts is unavailable the message fails (the carrier
// retries) and nothing is emitted; the retry handles it once.
func TestContactsOutageIsRetried(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(sb *sms.Sandbox) sms.Provider { return sb })
	f.contacts.FailNext("GetContactByPhone", 1)
	ctx := context.Background()
	in := app.Inbound{From: janePhone, To: number, Body: "hello", MessageSid: "SM1"}
	if _, err := f.svc.HandleInbound(ctx, in, valid); err == nil {
		t.Fatalf("during the outage: got nil error, want a failure")
	}
	if got := f.outboxEvents(t); len(got) != 0 {
		t.Fatalf("during the outage: got events %v, want none", got)
	}
	if _, err := f.svc.HandleInbound(ctx, in, valid); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if got, want := f.outboxEvents(t), []string{event.InboundMessage}; !equal(got, want) {
		t.Errorf("got events %v, want %v", got, want)
	}
}

// TestConcurrentCarrierRetries: the same message delivered several times at once is handled
// once: one contact, one reply, one set of events.
func TestConcurrentCarrierRetries(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(sb *sms.Sandbox) sms.Provider { return sb })
	ctx := context.Background()
	in := app.Inbound{From: janePhone, To: number, Body: "help", MessageSid: "SM1"}
	var wg sync.WaitGroup
	var handled atomic.Int32
	for range 4 {
		wg.Go(func() {
			res, err := f.svc.HandleInbound(ctx, in, valid)
			if err != nil {
				// A losing CreateContact race is retried by the carrier; the test retries too.
				res, err = f.svc.HandleInbound(ctx, in, valid)
			}
			if err != nil {
				t.Errorf("handle: %v", err)
				return
			}
			if !res.Duplicate {
				handled.Add(1)
			}
		})
	}
	wg.Wait()
	if n := handled.Load(); n != 1 {
		t.Errorf("got %d deliveries handled, want 1", n)
	}
	if got, want := f.outboxEvents(t), []string{event.InboundMessage}; !equal(got, want) {
		t.Errorf("got events %v, want %v", got, want)
	}
	if sent, _ := f.sandbox.List(ctx, acct, janePhone); len(sent) != 1 {
		t.Errorf("got %d help replies, want 1", len(sent))
	}
	if n := len(f.contacts.Created()); n != 1 {
		t.Errorf("got %d contacts created, want 1", n)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestKeywordFromOptedOutContact: an opted-out contact texting a keyword joins the groups and
// keyword_opt_in fires, but no auto-reply is sent: an opted-out contact is never texted.
func TestKeywordFromOptedOutContact(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(sb *sms.Sandbox) sms.Provider { return sb })
	ctx := context.Background()
	if _, err := f.svc.CreateKeyword(ctx, acct, "join", []string{"Events"}, "Welcome!"); err != nil {
		t.Fatalf("create keyword: %v", err)
	}
	f.contacts.Add(acct, janePhone, true)
	res, err := f.svc.HandleInbound(ctx, app.Inbound{From: janePhone, To: number, Body: "JOIN", MessageSid: "SM1"}, valid)
	if err != nil || res.Kind != domain.KindKeyword {
		t.Fatalf("got %+v, %v; want a keyword", res, err)
	}
	if got, want := f.outboxEvents(t), []string{event.InboundMessage, event.KeywordOptIn}; !equal(got, want) {
		t.Errorf("got events %v, want %v", got, want)
	}
	if c, _ := f.contacts.Contact(acct, janePhone); !equal(c.GetGroups(), []string{"Events"}) {
		t.Errorf("got groups %v, want [Events]", c.GetGroups())
	}
	if sent, _ := f.sandbox.List(ctx, acct, ""); len(sent) != 0 {
		t.Errorf("got %d messages to an opted-out contact, want 0", len(sent))
	}
}

// TestUnsignedRequestChangesNothing: a request failing the signature check stops before any
// lookup of the sender.
func TestUnsignedRequestChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(sb *sms.Sandbox) sms.Provider { return sb })
	_, err := f.svc.HandleInbound(context.Background(), app.Inbound{From: janePhone, To: number, Body: "STOP", MessageSid: "SM1"},
		func(string) bool { return false })
	if !errors.Is(err, app.ErrBadSignature) {
		t.Fatalf("got %v, want ErrBadSignature", err)
	}
	if n := len(f.contacts.Created()); n != 0 || len(f.outboxEvents(t)) != 0 {
		t.Errorf("got %d contacts and events %v, want none", n, f.outboxEvents(t))
	}
}

func testKeyring(t *testing.T) *secrets.Keyring {
	t.Helper()
	kr, err := secrets.ParseKeys("k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	if err != nil {
		t.Fatal(err)
	}
	return kr
}
