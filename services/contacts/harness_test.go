package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/customertext/webhooks/libs/auth"
	"github.com/customertext/webhooks/libs/event"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	"github.com/customertext/webhooks/libs/natsserver"
	"github.com/customertext/webhooks/libs/pgtest"
	"github.com/customertext/webhooks/libs/streams"
)

const testToken = "test-service-token-s3cr3t"

// lockedBuffer collects the service's logs; slog writes from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return addr
}

// service is the contacts service started in-process by run().
type service struct {
	client    contactsv1.ContactServiceClient
	conn      *grpc.ClientConn
	js        jetstream.JetStream
	grpcAddr  string
	adminAddr string
	dbURL     string
	logs      *lockedBuffer
	stop      func()
}

// startService runs run() against a fresh database and the given NATS URL and waits until its
// gRPC health check answers SERVING. It is stopped at cleanup, and run must return nil.
func startService(t *testing.T, natsURL string) *service {
	t.Helper()
	return startServiceVia(t, natsURL, pgtest.NewDatabase(t), nil)
}

// startServiceVia is startService on the database dbURL; the service reaches it through
// serviceDB(dbURL) when serviceDB is not nil (a proxy the test can stop), and s.dbURL stays the
// direct URL for the test's own assertions.
func startServiceVia(t *testing.T, natsURL, dbURL string, serviceDB func(string) string) *service {
	t.Helper()
	s := &service{grpcAddr: freeAddr(t), adminAddr: freeAddr(t), dbURL: dbURL, logs: &lockedBuffer{}}
	runDB := dbURL
	if serviceDB != nil {
		runDB = serviceDB(dbURL)
	}
	env := map[string]string{
		"NATS_URL":      natsURL,
		"DATABASE_URL":  runDB,
		"GRPC_ADDR":     s.grpcAddr,
		"ADMIN_ADDR":    s.adminAddr,
		"SERVICE_TOKEN": testToken,
		"LOG_LEVEL":     "debug",
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, func(k string) string { return env[k] }, s.logs) }()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("run returned %v, want nil", err)
				}
			case <-time.After(60 * time.Second):
				t.Errorf("run did not return within 60s of cancellation")
			}
		})
	}
	t.Cleanup(s.stop)

	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.Bearer(testToken)))
	if err != nil {
		t.Fatalf("grpc client: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	s.conn = conn
	s.client = contactsv1.NewContactServiceClient(conn)
	waitFor(t, "gRPC health SERVING", func() error {
		select {
		case err := <-errc:
			t.Fatalf("run returned early: %v\nlogs:\n%s", err, s.logs)
		default:
		}
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer ccancel()
		resp, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("status %v", resp.GetStatus())
		}
		return nil
	})

	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	if s.js, err = jetstream.New(nc); err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return s
}

// startNATS starts an embedded nats-server on a random port.
func startNATS(t *testing.T) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.Start(natsserver.Options{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// waitFor polls cond until it returns nil, failing the test after a generous deadline.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
}

// received is one message from the EVENTS stream.
type received struct {
	Subject string
	Header  nats.Header
	Env     event.Envelope
	Data    map[string]any
}

// eventReader reads the EVENTS stream from its start, in order.
type eventReader struct {
	t    *testing.T
	cons jetstream.Consumer
}

// readEvents returns a reader of the EVENTS messages on subject (wildcards allowed), waiting
// for the stream to exist first (the service creates it).
func (s *service) readEvents(t *testing.T, subject string) *eventReader {
	t.Helper()
	var cons jetstream.Consumer
	waitFor(t, "EVENTS stream", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		cons, err = s.js.OrderedConsumer(ctx, streams.Events, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
		return err
	})
	return &eventReader{t: t, cons: cons}
}

// next returns the next message, failing the test when none arrives within a generous deadline.
func (r *eventReader) next() received {
	r.t.Helper()
	msg, err := r.cons.Next(jetstream.FetchMaxWait(60 * time.Second))
	if err != nil {
		r.t.Fatalf("next event: %v", err)
	}
	env, err := event.Parse(msg.Data())
	if err != nil {
		r.t.Fatalf("parse event %s: %v", msg.Data(), err)
	}
	var data map[string]any
	if err := json.Unmarshal(env.Data, &data); err != nil {
		r.t.Fatalf("decode data: %v", err)
	}
	return received{Subject: msg.Subject(), Header: msg.Headers(), Env: env, Data: data}
}

// adminGet fetches a path of the admin server.
func (s *service) adminGet(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + s.adminAddr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return resp.StatusCode, b.String()
}
