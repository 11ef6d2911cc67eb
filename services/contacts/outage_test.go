package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	"github.com/customertext/webhooks/libs/natsserver"
	"github.com/customertext/webhooks/libs/pgtest"
	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/libs/tcpproxy"
)

// TestEventsWaitForNATSAndArePublishedOnce stops the real nats-server, makes changes while it is
// down, restarts it on the same port and store, and checks that every event reaches EVENTS
// exactly once.
func TestEventsWaitForNATSAndArePublishedOnce(t *testing.T) {
	_, portStr, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatalf("split: %v", err)
	}
	port, _ := strconv.Atoi(portStr)
	opts := natsserver.Options{Port: port, StoreDir: t.TempDir()}
	ns, err := natsserver.Start(opts)
	if err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	running := true
	t.Cleanup(func() {
		if running {
			ns.Shutdown()
		}
	})
	svc := startService(t, ns.ClientURL())
	ctx := testCtx(t)

	before := mustCreate(t, svc, &contactsv1.Contact{FirstName: "Before", Phone: "+15551230000"})
	if got := svc.readEvents(t, "events.>").next(); got.Data["contact_id"] != before.GetId() {
		t.Fatalf("first event for %v, want %s", got.Data["contact_id"], before.GetId())
	}

	ns.Shutdown()
	running = false
	waitFor(t, "the service to see NATS down", func() error {
		if _, body := svc.adminGet(t, "/metrics"); !strings.Contains(body, "contacts_nats_connected 0") {
			return errors.New("contacts_nats_connected is not 0")
		}
		return nil
	})
	if code, body := svc.adminGet(t, "/readyz"); code != 200 {
		t.Errorf("readyz during the NATS outage = %d %q, want 200: the API keeps working", code, body)
	}

	want := map[string]string{} // contact id -> event type, of the changes made during the outage
	for i := range 5 {
		c := mustCreate(t, svc, &contactsv1.Contact{FirstName: "During", Phone: fmt.Sprintf("+1555123100%d", i)})
		want[c.GetId()+"/new_contact"] = "new_contact"
	}
	if _, err := svc.client.UpdateContact(ctx, &contactsv1.UpdateContactRequest{AccountId: account,
		Contact:    &contactsv1.Contact{Id: before.GetId(), FirstName: "Renamed"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"first_name"}}}); err != nil {
		t.Fatalf("UpdateContact during the outage: %v", err)
	}
	want[before.GetId()+"/contact_updated"] = "contact_updated"
	if n := outboxRows(t, svc.dbURL); n == 0 {
		t.Errorf("outbox has no rows during the outage, want the %d waiting events", len(want))
	}

	ns, err = natsserver.Start(opts)
	if err != nil {
		t.Fatalf("restart nats-server: %v", err)
	}
	running = true
	waitFor(t, "the outbox to drain", func() error {
		if n := outboxRows(t, svc.dbURL); n != 0 {
			return fmt.Errorf("%d rows still in the outbox", n)
		}
		return nil
	})

	// The outbox is empty, so nothing more will be published: the stream now holds everything.
	var info *jetstream.StreamInfo
	waitFor(t, "EVENTS stream info", func() error {
		var err error
		info, err = streamInfo(svc.js)
		return err
	})
	if got, wantN := info.State.Msgs, uint64(1+len(want)); got != wantN {
		t.Errorf("EVENTS holds %d messages, want %d (1 before + %d during the outage)", got, wantN, len(want))
	}
	events := svc.readEvents(t, "events.>")
	events.next() // the one from before the outage
	got := map[string]string{}
	seenIDs := map[string]bool{}
	for range want {
		e := events.next()
		if seenIDs[e.Env.EventID] {
			t.Errorf("event %s published twice", e.Env.EventID)
		}
		seenIDs[e.Env.EventID] = true
		got[fmt.Sprintf("%v/%s", e.Data["contact_id"], e.Env.Event)] = e.Env.Event
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events after the outage mismatch (-want +got):\n%s", diff)
	}
}

func outboxRows(t *testing.T, dbURL string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM contacts.outbox").Scan(&n); err != nil {
		t.Fatalf("count outbox: %v", err)
	}
	return n
}

func streamInfo(js jetstream.JetStream) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, streams.Events)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}

// TestPostgresOutageAnswersUnavailable puts a TCP proxy between the service and the real
// PostgreSQL, stops it, and checks that calls during the outage answer UNAVAILABLE (a caller
// retries those), never INTERNAL, and that calls succeed again once the proxy is back.
func TestPostgresOutageAnswersUnavailable(t *testing.T) {
	ns := startNATS(t)
	dbURL := pgtest.NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("parse database url: %v", err)
	}
	proxy, err := tcpproxy.New(u.Host)
	if err != nil {
		t.Fatalf("start proxy: %v", err)
	}
	t.Cleanup(proxy.Stop)
	svc := startServiceVia(t, ns.ClientURL(), dbURL, func(string) string {
		v := *u
		v.Host = proxy.Addr()
		return v.String()
	})
	existing := mustCreate(t, svc, &contactsv1.Contact{FirstName: "Before", Phone: "+15551230000"})

	proxy.Stop()
	calls := map[string]func(context.Context) error{
		"CreateContact": func(ctx context.Context) error {
			_, err := svc.client.CreateContact(ctx, &contactsv1.CreateContactRequest{AccountId: account,
				Contact: &contactsv1.Contact{FirstName: "During", Phone: "+15551230001"}})
			return err
		},
		"GetContact": func(ctx context.Context) error {
			_, err := svc.client.GetContact(ctx, &contactsv1.GetContactRequest{AccountId: account, Id: existing.GetId()})
			return err
		},
		"ListContacts": func(ctx context.Context) error {
			_, err := svc.client.ListContacts(ctx, &contactsv1.ListContactsRequest{AccountId: account})
			return err
		},
	}
	for name, call := range calls {
		// Twice: the first call may find a pooled connection that the outage cut.
		for i := range 2 {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := call(ctx)
			cancel()
			if got := status.Code(err); got != codes.Unavailable {
				t.Errorf("%s #%d during the outage: got %s (%v), want %s", name, i+1, got, err, codes.Unavailable)
			}
		}
	}

	if err := proxy.Start(); err != nil {
		t.Fatalf("restart proxy: %v", err)
	}
	waitFor(t, "CreateContact to succeed after the outage", func() error {
		return calls["CreateContact"](testCtx(t))
	})
	if err := calls["GetContact"](testCtx(t)); err != nil {
		t.Errorf("GetContact after the outage: %v", err)
	}
}
