// Command bench is `make bench`: it drives the real pipeline (embedded NATS JetStream, the
// machine's PostgreSQL, the services as processes, real HTTP receivers on loopback; events
// published through a transactional outbox and its relay, as the services publish them) and
// prints figures, ending with one JSON line that summarises them.
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
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
