package peers

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/customertext/webhooks/libs/natsserver"
)

func TestPeersCountEachOtherAndForgetTheGone(t *testing.T) {
	ns, err := natsserver.Start(natsserver.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	connect := func() *nats.Conn {
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	const interval = 50 * time.Millisecond
	var told atomic.Int64
	a := New(connect(), "test.peers", "a", interval, func(n int) { told.Store(int64(n)) })
	b := New(connect(), "test.peers", "b", interval, nil)
	if got := a.Count(); got != 1 {
		t.Fatalf("before any heartbeat: %d replicas, want 1 (itself)", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runA := make(chan error, 1)
	go func() { runA <- a.Run(ctx) }()
	bctx, stopB := context.WithCancel(ctx)
	runB := make(chan error, 1)
	go func() { runB <- b.Run(bctx) }()

	// Garbage on the subject is not a replica.
	garbage := connect()
	for _, body := range []string{"", strings.Repeat("x", 300)} {
		if err := garbage.Publish("test.peers", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both replicas to count 2", func() bool { return a.Count() == 2 && b.Count() == 2 && told.Load() == 2 })
	stopB()
	if err := <-runB; err != nil {
		t.Fatalf("b.Run: %v", err)
	}
	waitFor(t, "a to forget b", func() bool { return a.Count() == 1 && told.Load() == 1 })
	cancel()
	if err := <-runA; err != nil {
		t.Fatalf("a.Run: %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
