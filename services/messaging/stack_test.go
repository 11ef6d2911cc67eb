package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
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
	messagingv1 "github.com/customertext/webhooks/libs/gen/customertext/messaging/v1"
	"github.com/customertext/webhooks/libs/natsserver"
	"github.com/customertext/webhooks/libs/pgtest"
	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/libs/proctest"
	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/services/messaging/internal/carrier"
)

const (
	testToken     = "svc-token-for-tests"
	publicBaseURL = "https://sms.example.test"
	// waitFor bounds every wait: generous, because the machine is small and shared.
	waitFor = 60 * time.Second
)

// syncBuffer collects the service's log output.
type syncBuffer = proctest.Buffer

// stack is messaging started by run() against a real PostgreSQL database, a real embedded
// nats-server and the fake contacts service over real gRPC.
type stack struct {
	t        *testing.T
	contacts *contactstest.Server
	js       jetstream.JetStream
	db       *pgxpool.Pool
	client   messagingv1.MessagingServiceClient
	httpAddr string
	grpc     string
	admin    string
	logs     *syncBuffer
	stop     func() error
	// startNATS brings the NATS server up when the stack started with it down.
	startNATS func()
}

func startStack(t *testing.T) *stack {
	t.Helper()
	return startStackWith(t, stackOptions{})
}

// stackOptions vary the stack.
type stackOptions struct {
	// contacts starts the contacts service and returns its address (nil: the in-memory fake).
	contacts func(t *testing.T, natsURL, dbURL string) string
	// natsDown starts messaging while its NATS server is down; stack.startNATS brings it up.
	natsDown bool
	// serviceDB, when set, is the database URL messaging uses instead of the direct one (a
	// proxy the test can stop).
	serviceDB func(dbURL string) string
}

// startStackWith starts messaging as opts say.
func startStackWith(t *testing.T, opts stackOptions) *stack {
	t.Helper()
	storeDir := t.TempDir()
	ns, err := natsserver.Start(natsserver.Options{Port: -1, StoreDir: storeDir})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	natsURL := ns.ClientURL()
	var nsMu sync.Mutex
	t.Cleanup(func() {
		nsMu.Lock()
		defer nsMu.Unlock()
		if ns != nil {
			ns.Shutdown()
		}
	})
	startNATS := func() {}
	if opts.natsDown {
		nsMu.Lock()
		ns.Shutdown()
		ns = nil
		nsMu.Unlock()
		u, err := url.Parse(natsURL)
		if err != nil {
			t.Fatalf("parse nats url: %v", err)
		}
		port, err := strconv.Atoi(u.Port())
		if err != nil {
			t.Fatalf("nats port: %v", err)
		}
		// Hold the port while NATS is down, refusing every connection, so that no other listener
		// of this test binary (they bind random ports) takes it before NATS comes back.
		hold, err := net.Listen("tcp", u.Host)
		if err != nil {
			t.Fatalf("hold nats port %d: %v", port, err)
		}
		go func() {
			for {
				c, err := hold.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		t.Cleanup(func() { hold.Close() })
		startNATS = func() {
			t.Helper()
			hold.Close()
			restarted, err := natsserver.Start(natsserver.Options{Port: port, StoreDir: storeDir})
			if err != nil {
				t.Fatalf("restart nats on port %d: %v", port, err)
			}
			nsMu.Lock()
			ns = restarted
			nsMu.Unlock()
		}
	}
	dbURL := pgtest.NewDatabase(t)
	var contacts *contactstest.Server
	var contactsAddr string
	if opts.contacts == nil {
		contacts, contactsAddr = contactstest.Start(t, testToken)
	} else {
		contactsAddr = opts.contacts(t, natsURL, dbURL)
	}

	runDB := dbURL
	if opts.serviceDB != nil {
		runDB = opts.serviceDB(dbURL)
	}
	env := map[string]string{
		"NATS_URL": natsURL, "DATABASE_URL": runDB, "GRPC_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0",
		"HTTP_ADDR": "127.0.0.1:0", "PUBLIC_BASE_URL": publicBaseURL, "CONTACTS_ADDR": contactsAddr,
		"SERVICE_TOKEN": testToken, "LOG_LEVEL": "debug",
		"SECRETS_KEYS": "k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, logs) }()
	stopped := false
	var runErr error
	stop := func() error {
		if stopped {
			return runErr
		}
		stopped = true
		cancel()
		select {
		case runErr = <-done:
		case <-time.After(waitFor):
			runErr = errors.New("run did not return after cancel")
		}
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
		HTTP  string `json:"http_addr"`
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
	nc, err := nats.Connect(natsURL, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond))
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	db, err := postgres.Open(context.Background(), dbURL, "messaging", 2)
	if err != nil {
		t.Fatalf("open db: %v", err)
	}
	t.Cleanup(db.Close)
	return &stack{t: t, contacts: contacts, js: js, db: db, client: messagingv1.NewMessagingServiceClient(conn),
		httpAddr: addrs.HTTP, grpc: addrs.GRPC, admin: addrs.Admin, logs: logs, stop: stop, startNATS: startNATS}
}

// registerNumber registers the account's number with token.
func (s *stack) registerNumber(account, phone, token string) {
	s.t.Helper()
	if _, err := s.client.RegisterNumber(context.Background(), &messagingv1.RegisterNumberRequest{
		AccountId: account, PhoneNumber: phone, CarrierAuthToken: token}); err != nil {
		s.t.Fatalf("register number: %v", err)
	}
}

// inbound posts a carrier form signed with token ("" sends no signature).
func (s *stack) inbound(token string, form url.Values) (int, string) {
	s.t.Helper()
	sig := ""
	if token != "" {
		sig = carrier.Signature(token, publicBaseURL+"/sms/inbound", form)
	}
	return s.postInbound(sig, form)
}

// postInbound posts a carrier form with the given signature header ("" sends none).
func (s *stack) postInbound(sig string, form url.Values) (int, string) {
	s.t.Helper()
	return s.post(sig, "application/x-www-form-urlencoded", nil, form)
}

// post posts a form with a content type and extra headers.
func (s *stack) post(sig, contentType string, header http.Header, form url.Values) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+s.httpAddr+"/sms/inbound", strings.NewReader(form.Encode()))
	if err != nil {
		s.t.Fatalf("request: %v", err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header[k] = v
	}
	if sig != "" {
		req.Header.Set(carrier.SignatureHeader, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("post inbound: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func smsForm(from, to, body, sid string) url.Values {
	return url.Values{"From": {from}, "To": {to}, "Body": {body}, "MessageSid": {sid},
		"AccountSid": {"AC123"}, "NumMedia": {"0"}}
}

// received is a message read back from the EVENTS stream.
type received struct {
	Subject string
	MsgID   string
	Header  nats.Header
	Env     event.Envelope
	Data    map[string]any
}

// events reads every event of the account currently on the EVENTS stream.
func (s *stack) events(account string) []received {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := s.js.OrderedConsumer(ctx, streams.Events, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{streams.EventSubject(account, "*")}})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil // the service has not created the streams yet
	}
	if err != nil {
		s.t.Fatalf("ordered consumer: %v", err)
	}
	var out []received
	for {
		batch, err := c.FetchNoWait(100)
		if err != nil {
			s.t.Fatalf("fetch: %v", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			env, err := event.Parse(m.Data())
			if err != nil {
				s.t.Fatalf("event on %s does not parse: %v", m.Subject(), err)
			}
			var data map[string]any
			if err := json.Unmarshal(env.Data, &data); err != nil {
				s.t.Fatalf("event data: %v", err)
			}
			out = append(out, received{Subject: m.Subject(), MsgID: m.Headers().Get(jetstream.MsgIDHeader), Header: m.Headers(), Env: env, Data: data})
		}
		if batch.Error() != nil {
			s.t.Fatalf("fetch: %v", batch.Error())
		}
		if n == 0 {
			return out
		}
	}
}

// waitEvents polls the EVENTS stream until the account has at least n events of type typ.
func (s *stack) waitEvents(account, typ string, n int) []received {
	s.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		var got []received
		for _, e := range s.events(account) {
			if e.Env.Event == typ {
				got = append(got, e)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("got %d %s events for %s after %s, want %d", len(got), typ, account, waitFor, n)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}

// count returns how many events of typ the account has.
func count(evs []received, typ string) int {
	n := 0
	for _, e := range evs {
		if e.Env.Event == typ {
			n++
		}
	}
	return n
}

// sent lists the sandbox provider's messages to a number.
func (s *stack) sent(account, to string) []*messagingv1.SentMessage {
	s.t.Helper()
	resp, err := s.client.ListSentMessages(context.Background(), &messagingv1.ListSentMessagesRequest{AccountId: account, To: to})
	if err != nil {
		s.t.Fatalf("list sent: %v", err)
	}
	return resp.GetMessages()
}

// rows counts rows of a table in the messaging schema.
func (s *stack) rows(table string) int {
	s.t.Helper()
	var n int
	if err := s.db.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		s.t.Fatalf("count %s: %v", table, err)
	}
	return n
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
