// Command campaigns creates and sends campaigns: it resolves the audience from the contacts
// service, skips opted-out contacts, sends through the SMS provider with bounded concurrency,
// resumes after a crash without sending twice, and publishes campaign_sent through its outbox.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "campaigns:", err)
		os.Exit(1)
	}
}
