package main

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/natsserver"
	"github.com/customertext/webhooks/libs/pgtest"
)

const testServiceToken = "test-service-token"

func testKeys() string {
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(i + 1)
	}
	return "k1:" + base64.StdEncoding.EncodeToString(k)
}

// env is a running service with its real dependencies: an embedded nats-server, a fresh
// PostgreSQL database and the service itself started through start() on random ports.
type env struct {
	t        *testing.T
	args     []string
	dbURL    string
	natsURL  string
	ns       *natsserver.Server
	addrs    addrs
	logs     *lockedBuffer
	conn     *grpc.ClientConn
	nc       *nats.Conn
	js       jetstream.JetStream
	webhooks webhooksv1.WebhookServiceClient
	configs  webhooksv1.WebhookConfigServiceClient
	accounts webhooksv1.AccountServiceClient
}

// lockedBuffer collects the service's log output for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newEnv(t *testing.T, extraArgs ...string) *env {
	t.Helper()
	return newEnvVia(t, nil, extraArgs...)
}

// newEnvVia is newEnv with the service reaching its database at serviceDB(e.dbURL) when
// serviceDB is not nil (through a proxy the test can stop); e.dbURL stays the direct URL.
func newEnvVia(t *testing.T, serviceDB func(string) string, extraArgs ...string) *env {
	t.Helper()
	ns, err := natsserver.Start(natsserver.Options{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	t.Cleanup(ns.Shutdown)
	e := &env{t: t, dbURL: pgtest.NewDatabase(t), natsURL: ns.ClientURL(), ns: ns}
	runDB := e.dbURL
	if serviceDB != nil {
		runDB = serviceDB(e.dbURL)
	}

	e.args = append([]string{
		"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0",
		"-nats-url", e.natsURL, "-database-url", runDB,
		"-service-token", testServiceToken, "-secrets-keys", testKeys(),
		"-ssrf-allow", "127.0.0.0/8", "-allow-insecure-http", "true", "-log-level", "warn",
	}, extraArgs...)
	e.addrs, e.logs = startInstance(t, e.args)

	conn, err := grpc.NewClient(e.addrs.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc client: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	e.conn = conn
	e.webhooks = webhooksv1.NewWebhookServiceClient(conn)
	e.configs = webhooksv1.NewWebhookConfigServiceClient(conn)
	e.accounts = webhooksv1.NewAccountServiceClient(conn)

	nc, err := nats.Connect(e.natsURL)
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	e.nc = nc
	if e.js, err = jetstream.New(nc); err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return e
}

// startInstance runs the service with args until the test ends.
func startInstance(t *testing.T, args []string) (addrs, *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	readyc := make(chan addrs, 1)
	done := make(chan error, 1)
	logs := &lockedBuffer{}
	go func() {
		done <- start(ctx, args, func(string) string { return "" }, logs, func(a addrs) { readyc <- a })
	}()
	var a addrs
	select {
	case a = <-readyc:
	case err := <-done:
		cancel()
		t.Fatalf("service exited before it was ready: %v\nlogs:\n%s", err, logs.String())
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("service not ready after 60s\nlogs:\n%s", logs.String())
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("service returned %v, want nil on shutdown", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("service did not stop within 60s")
		}
		if t.Failed() {
			t.Logf("service logs:\n%s", logs.String())
		}
	})
	return a, logs
}

// replica starts a second instance of the service on the same database and NATS.
func (e *env) replica() addrs {
	e.t.Helper()
	a, _ := startInstance(e.t, e.args)
	return a
}

// as returns a context carrying a bearer token.
func as(key string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
}

func (e *env) service() context.Context { return as(testServiceToken) }

// account creates an account and returns an API key per role.
func (e *env) account(name string) (accountID string, keys map[webhooksv1.Role]string) {
	e.t.Helper()
	acc, err := e.accounts.CreateAccount(e.service(), &webhooksv1.CreateAccountRequest{Name: name})
	if err != nil {
		e.t.Fatalf("CreateAccount: %v", err)
	}
	keys = map[webhooksv1.Role]string{}
	for role, email := range map[webhooksv1.Role]string{
		webhooksv1.Role_ROLE_ADMIN: "admin@example.com", webhooksv1.Role_ROLE_MANAGER: "manager@example.com",
		webhooksv1.Role_ROLE_USER: "user@example.com",
	} {
		k, err := e.accounts.CreateApiKey(e.service(), &webhooksv1.CreateApiKeyRequest{
			AccountId: acc.GetAccountId(), UserEmail: email, Role: role})
		if err != nil {
			e.t.Fatalf("CreateApiKey(%s): %v", role, err)
		}
		keys[role] = k.GetApiKey()
	}
	return acc.GetAccountId(), keys
}

func (e *env) admin(name string) (string, context.Context) {
	id, keys := e.account(name)
	return id, as(keys[webhooksv1.Role_ROLE_ADMIN])
}

// db opens a direct connection to the service's database for assertions on raw rows.
func (e *env) db() *pgx.Conn {
	e.t.Helper()
	conn, err := pgx.Connect(context.Background(), e.dbURL)
	if err != nil {
		e.t.Fatalf("connect db: %v", err)
	}
	e.t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func (e *env) createWebhook(ctx context.Context, req *webhooksv1.CreateWebhookRequest) *webhooksv1.CreateWebhookResponse {
	e.t.Helper()
	resp, err := e.webhooks.CreateWebhook(ctx, req)
	if err != nil {
		e.t.Fatalf("CreateWebhook: %v", err)
	}
	return resp
}

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("code: got %s (%v), want %s", got, err, want)
	}
}

// fieldOf returns the field named by an INVALID_ARGUMENT's BadRequest detail.
func fieldOf(err error) string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
			return br.GetFieldViolations()[0].GetField()
		}
	}
	return ""
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not true after 30s: %v", what, err)
}

var errNotYet = errors.New("not yet")
