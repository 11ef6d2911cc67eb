// Command devstack is `make dev`: it runs the whole platform locally (an embedded NATS JetStream
// server, the machine's PostgreSQL, every service as its own process), walks one real event from
// a new contact to a webhook received by a local endpoint, prints that request, and keeps running
// until Ctrl-C.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/customertext/webhooks/libs/natsserver"
)

func main() {
	natsserver.RunNodeIfChild() // -nats-nodes 3 runs this binary again as each node
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}
