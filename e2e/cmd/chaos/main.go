// Command chaos is `make chaos`: it runs the platform as real processes and breaks it under load
// (dispatchers and nats-server killed, PostgreSQL cut off, endpoints failing, hanging, dripping
// and answering 100 MB, poison messages on every stream, the subscription service killed while a
// webhook is disabled), then checks that every event reached its webhooks, with duplicates only
// under the same webhook-id. The last line it prints is a JSON summary.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/customertext/webhooks/libs/natsserver"
)

func main() {
	// A clustered run (-nats-nodes 3) starts its nats-server nodes as this binary run again.
	natsserver.RunNodeIfChild()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		// Failed scenarios are already reported above the summary, which stays the last line.
		if !errors.Is(err, errScenariosFailed) {
			fmt.Fprintln(os.Stderr, "chaos:", err)
		}
		os.Exit(1)
	}
}
