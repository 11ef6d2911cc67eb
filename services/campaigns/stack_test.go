package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/customertext/webhooks/libs/auth"
	"github.com/customertext/webhooks/libs/contactstest"
	"github.com/customertext/webhooks/libs/event"
	campaignsv1 "github.com/customertext/webhooks/libs/gen/customertext/campaigns/v1"
	"github.com/customertext/webhooks/libs/natsserver"
	"github.com/customertext/webhooks/libs/pgtest"
	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/libs/proctest"
	"github.com/customertext/webhooks/libs/streams"
)

const (
	testToken = "svc-token-for-tests"
	// waitFor bounds every wait: generous, because the machine is small and shared.
	waitFor = 60 * time.Second
)

// syncBuffer collects the service's log output.
type syncBuffer = proctest.Buffer

// deps are the real components a campaigns process runs against; they outlive restarts.
type deps struct {
	t            *testing.T
	natsURL      string
	dbURL        string
	contacts     *contactstest.Server
	contactsAddr string
	js           jetstream.JetStream
	db           *pgxpool.Pool
}

func newDeps(t *testing.T) *deps {
	t.Helper()
	return newDepsWith(t, nil)
}

// newDepsWith starts the contacts service with startContacts (nil: the in-memory fake, then
// available as deps.contacts).
func newDepsWith(t *testing.T, startContacts func(t *testing.T, natsURL, dbURL string) string) *deps {
	t.Helper()
	ns, err := natsserver.Start(natsserver.Options{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(ns.Shutdown)
	dbURL := pgtest.NewDatabase(t)
	var contacts *contactstest.Server
	var addr string
	if startContacts == nil {
		contacts, addr = contactstest.Start(t, testToken)
	} else {
		addr = startContacts(t, ns.ClientURL(), dbURL)
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	d := &deps{t: t, natsURL: ns.ClientURL(), dbURL: dbURL, contacts: contacts, contactsAddr: addr, js: js}
	return d
}

// openDB opens the campaigns schema (after the service migrated it).
func (d *deps) openDB() *pgxpool.Pool {
	d.t.Helper()
	if d.db == nil {
		db, err := postgres.Open(context.Background(), d.dbURL, "campaigns", 2)
		if err != nil {
			d.t.Fatalf("open db: %v", err)
		}
		d.t.Cleanup(db.Close)
		d.db = db
	}
	return d.db
}

// proc is one campaigns process started by run().
type proc struct {
	client campaignsv1.CampaignServiceClient
	grpc   string
	admin  string
	logs   *syncBuffer
	stop   func() error
}

func (d *deps) start(extra map[string]string) *proc {
	t := d.t
	t.Helper()
	env := map[string]string{
		"NATS_URL": d.natsURL, "DATABASE_URL": d.dbURL, "GRPC_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0",
		"CONTACTS_ADDR": d.contactsAddr, "SERVICE_TOKEN": testToken, "SEND_CONCURRENCY": "3",
	}
	for k, v := range extra {
		env[k] = v
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, logs) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(waitFor):
				runErr = errors.New("run did not return after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	var addrs struct {
		GRPC  string `json:"grpc_addr"`
		Admin string `json:"admin_addr"`
	}
	deadline := time.Now().Add(waitFor)
	for addrs.GRPC == "" {
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v\nlogs:\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("service did not log its addresses; logs:\n%s", logs.String())
		}
		for line := range strings.SplitSeq(logs.String(), "\n") {
			if strings.Contains(line, `"msg":"listening"`) {
				if err := json.Unmarshal([]byte(line), &addrs); err != nil {
					t.Fatalf("parse %q: %v", line, err)
				}
			}
		}
		time.Sleep(20 * time.Millisecond) // polling the log for a condition, not synchronising
	}
	conn, err := grpc.NewClient(addrs.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.Bearer(testToken)))
	if err != nil {
		t.Fatalf("grpc client: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &proc{client: campaignsv1.NewCampaignServiceClient(conn), grpc: addrs.GRPC, admin: addrs.Admin, logs: logs, stop: stop}
}

// received is a message read back from the EVENTS stream.
type received struct {
	Subject string
	MsgID   string
	Env     event.Envelope
	Data    map[string]any
}

// events reads every event of the account currently on the EVENTS stream.
func (d *deps) events(account string) []received {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := d.js.OrderedConsumer(ctx, streams.Events, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{streams.EventSubject(account, "*")}})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil // the service has not created the streams yet
	}
	if err != nil {
		d.t.Fatalf("ordered consumer: %v", err)
	}
	var out []received
	for {
		batch, err := c.FetchNoWait(100)
		if err != nil {
			d.t.Fatalf("fetch: %v", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			env, err := event.Parse(m.Data())
			if err != nil {
				d.t.Fatalf("event on %s does not parse: %v", m.Subject(), err)
			}
			var data map[string]any
			if err := json.Unmarshal(env.Data, &data); err != nil {
				d.t.Fatalf("event data: %v", err)
			}
			out = append(out, received{Subject: m.Subject(), MsgID: m.Headers().Get(jetstream.MsgIDHeader), Env: env, Data: data})
		}
		if batch.Error() != nil {
			d.t.Fatalf("fetch: %v", batch.Error())
		}
		if n == 0 {
			return out
		}
	}
}

// waitEvents polls the EVENTS stream until the account has at least n events of type typ.
func (d *deps) waitEvents(account, typ string, n int) []received {
	d.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		var got []received
		for _, e := range d.events(account) {
			if e.Env.Event == typ {
				got = append(got, e)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("got %d %s events for %s after %s, want %d", len(got), typ, account, waitFor, n)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}

// sandbox returns the recipients of the sandbox provider's messages, in send order.
func (d *deps) sandbox(account string) []string {
	d.t.Helper()
	rows, err := d.openDB().Query(context.Background(), `SELECT recipient FROM sandbox_messages WHERE account_id = $1 ORDER BY send_time, id`, account)
	if err != nil {
		d.t.Fatalf("query sandbox: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			d.t.Fatalf("scan: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		d.t.Fatalf("rows: %v", err)
	}
	return out
}

// metrics scrapes the admin port's /metrics.
func metrics(t *testing.T, admin string) string {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatalf("get metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read metrics: %v", err)
	}
	return string(b)
}
