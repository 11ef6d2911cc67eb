package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/customertext/webhooks/libs/auth"
	"github.com/customertext/webhooks/libs/event"
	eventsv1 "github.com/customertext/webhooks/libs/gen/customertext/events/v1"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/natsserver"
	"github.com/customertext/webhooks/libs/signing"
	"github.com/customertext/webhooks/libs/streams"
)

const testToken = "svc-test-token"

// startNATS runs an embedded JetStream server for the test.
func startNATS(t *testing.T) (*natsserver.Server, string) {
	t.Helper()
	srv, err := natsserver.Start(natsserver.Options{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv, srv.ClientURL()
}

// connectJS connects a test client.
func connectJS(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := streams.Ensure(ctx, js, streams.Config{}); err != nil {
		t.Fatalf("ensure streams: %v", err)
	}
	return nc, js
}

// configServer is a small real WebhookConfigService serving static configs: the subscription
// service as the dispatcher sees it.
type configServer struct {
	webhooksv1.UnimplementedWebhookConfigServiceServer
	mu      sync.Mutex
	configs map[string]*webhooksv1.WebhookConfig
	lists   int
	addr    string
}

func startConfigServer(t *testing.T, configs ...*webhooksv1.WebhookConfig) *configServer {
	t.Helper()
	cs := &configServer{configs: map[string]*webhooksv1.WebhookConfig{}}
	for _, c := range configs {
		cs.configs[c.GetId()] = c
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := grpc.NewServer(grpc.UnaryInterceptor(auth.ServiceInterceptor(testToken)))
	webhooksv1.RegisterWebhookConfigServiceServer(s, cs)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	cs.addr = lis.Addr().String()
	return cs
}

func (cs *configServer) set(c *webhooksv1.WebhookConfig) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.configs[c.GetId()] = c
}

func (cs *configServer) remove(id string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.configs, id)
}

func (cs *configServer) ListWebhookConfigs(_ context.Context, req *webhooksv1.ListWebhookConfigsRequest) (*webhooksv1.ListWebhookConfigsResponse, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.lists++
	ids := make([]string, 0, len(cs.configs))
	for id := range cs.configs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	start := 0
	if req.GetPageToken() != "" {
		n, err := strconv.Atoi(req.GetPageToken())
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, "page_token: invalid")
		}
		start = n
	}
	size := int(req.GetPageSize())
	if size <= 0 || size > 2 {
		size = 2 // small pages so pagination is exercised
	}
	resp := &webhooksv1.ListWebhookConfigsResponse{}
	for i := start; i < len(ids) && i < start+size; i++ {
		resp.Configs = append(resp.Configs, proto.CloneOf(cs.configs[ids[i]]))
	}
	if start+size < len(ids) {
		resp.NextPageToken = strconv.Itoa(start + size)
	}
	return resp, nil
}

func (cs *configServer) GetWebhookConfig(_ context.Context, req *webhooksv1.GetWebhookConfigRequest) (*webhooksv1.GetWebhookConfigResponse, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c, ok := cs.configs[req.GetId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "webhook not found")
	}
	return &webhooksv1.GetWebhookConfigResponse{Config: proto.CloneOf(c)}, nil
}

// received is one request a test receiver got.
type received struct {
	Header http.Header
	Body   []byte
	At     time.Time
}

// receiver is a real HTTP endpoint on loopback whose answer the test controls.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []received
	respond func(n int, r *http.Request) int
	// respondW, when set, takes precedence and may set response headers.
	respondW func(n int, h http.Header) int
}

func startReceiver(t *testing.T, respond func(n int, r *http.Request) int) *receiver {
	t.Helper()
	rc := &receiver{respond: respond}
	if rc.respond == nil {
		rc.respond = func(int, *http.Request) int { return http.StatusOK }
	}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{Header: r.Header.Clone(), Body: body, At: time.Now()})
		n := len(rc.got)
		respondW := rc.respondW
		rc.mu.Unlock()
		var code int
		if respondW != nil {
			code = respondW(n, w.Header())
		} else {
			code = rc.respond(n, r)
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte("status " + strconv.Itoa(code)))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

// distinctIDs counts distinct webhook-id headers received.
func (rc *receiver) distinctIDs() map[string]int {
	out := map[string]int{}
	for _, r := range rc.requests() {
		out[r.Header.Get(signing.HeaderID)]++
	}
	return out
}

// webhookConfig builds a config with a fresh secret; the secret text is returned for verifying.
func webhookConfig(t *testing.T, id, account, url string, types ...string) (*webhooksv1.WebhookConfig, signing.Secret) {
	t.Helper()
	sec, text, err := signing.NewSecret()
	if err != nil {
		t.Fatalf("new secret: %v", err)
	}
	return &webhooksv1.WebhookConfig{
		Id: id, AccountId: account, Url: url, EventTypes: types, Enabled: true,
		Secrets: []*webhooksv1.SigningSecret{{Secret: text}}, Version: 1,
	}, sec
}

// dispatcherEnv is the environment of a dispatcher under test.
func dispatcherEnv(natsURL, subsAddr string, extra ...string) map[string]string {
	env := map[string]string{
		"NATS_URL":           natsURL,
		"SUBSCRIPTIONS_ADDR": subsAddr,
		"SERVICE_TOKEN":      testToken,
		"ADMIN_ADDR":         "127.0.0.1:0",
		"SSRF_ALLOW":         "127.0.0.1/32",
		"LOG_LEVEL":          "warn",
		"VERSION":            "1.2.3-test",
		"CONCURRENCY":        "32",
		"DELIVERY_TIMEOUT":   "5s",
		"ACK_WAIT":           "30s",
		"SHUTDOWN_TIMEOUT":   "10s",
		"RESYNC_INTERVAL":    "30s",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return env
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDispatcher runs the service in-process; stop cancels it and returns run's error.
func startDispatcher(t *testing.T, env map[string]string) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, func(k string) string { return env[k] }, logs) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(60 * time.Second):
				err = fmt.Errorf("dispatcher did not stop within 60s")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("dispatcher stopped with error: %v", err)
		}
		if t.Failed() {
			t.Logf("dispatcher logs:\n%s", logs.String())
		}
	})
	return stop
}

// publishEvent publishes an event the way the outbox relays do.
func publishEvent(t *testing.T, js jetstream.JetStream, accountID string, payload proto.Message) event.Envelope {
	t.Helper()
	return publishEventWith(t, js, accountID, payload, nil)
}

// publishEventWith publishes an event with extra headers (a traceparent, as relays copy it).
func publishEventWith(t *testing.T, js jetstream.JetStream, accountID string, payload proto.Message, hdr nats.Header) event.Envelope {
	t.Helper()
	return publishEventAt(t, js, accountID, payload, hdr, time.Now())
}

// publishEventAt publishes an event that occurred at the given time.
func publishEventAt(t *testing.T, js jetstream.JetStream, accountID string, payload proto.Message, hdr nats.Header, at time.Time) event.Envelope {
	t.Helper()
	env, err := event.New(accountID, payload, at)
	if err != nil {
		t.Fatalf("new event: %v", err)
	}
	body, err := env.Marshal()
	if err != nil {
		t.Fatalf("marshal event: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg := nats.NewMsg(streams.EventSubject(accountID, env.Event))
	msg.Data = body
	for k, v := range hdr {
		msg.Header[k] = v
	}
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(env.EventID)); err != nil {
		t.Fatalf("publish event: %v", err)
	}
	return env
}

func newContact(id string) *eventsv1.NewContact {
	return &eventsv1.NewContact{ContactId: id, FirstName: "Jane", Phone: "+15551234567"}
}

// attemptReader reads attempt records from the ATTEMPTS stream as the subscription service
// would (it acks them, so the work queue drains).
type attemptReader struct {
	cons jetstream.Consumer
	mu   sync.Mutex
	recs []*webhooksv1.AttemptRecord
}

func newAttemptReader(t *testing.T, js jetstream.JetStream) *attemptReader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := streams.EnsureConsumer(ctx, js, streams.Attempts, jetstream.ConsumerConfig{
		Durable: streams.AttemptLogConsumer, AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "attempts.>",
	})
	if err != nil {
		t.Fatalf("attempt consumer: %v", err)
	}
	return &attemptReader{cons: cons}
}

// poll fetches what is available and returns every record read so far.
func (a *attemptReader) poll(t *testing.T) []*webhooksv1.AttemptRecord {
	t.Helper()
	batch, err := a.cons.FetchNoWait(1000)
	if err != nil {
		t.Fatalf("fetch attempts: %v", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for m := range batch.Messages() {
		if m.Subject() != streams.AttemptBatchSubject || m.Headers().Get(streams.AttemptBatchHeader) != "1" {
			t.Errorf("attempt records: got subject %s header %q, want a marked batch on %s",
				m.Subject(), m.Headers().Get(streams.AttemptBatchHeader), streams.AttemptBatchSubject)
		}
		b := &webhooksv1.AttemptBatch{}
		if err := proto.Unmarshal(m.Data(), b); err != nil || len(b.GetRecords()) == 0 {
			t.Errorf("attempt batch on %s: %d records, %v", m.Subject(), len(b.GetRecords()), err)
		}
		a.recs = append(a.recs, b.GetRecords()...)
		_ = m.Ack()
	}
	return append([]*webhooksv1.AttemptRecord(nil), a.recs...)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

// metric sums the samples of the admin endpoint's /metrics whose line starts with prefix
// (a name, optionally with the start of its labels); -1 when the endpoint is unreachable.
func metric(t *testing.T, adminAddr, prefix string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1
	}
	sum := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		rest := line[len(prefix):]
		if rest != "" && rest[0] != ' ' && rest[0] != '{' && rest[0] != ',' && rest[0] != '}' {
			continue // a longer metric name
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}
