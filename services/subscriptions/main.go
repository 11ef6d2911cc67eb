// Command subscriptions is the webhook settings service behind "Settings -> Webhook
// Integrations": webhook configs, permissions, test events, delivery logs and redelivery. Its
// create-account subcommand creates an account and its first admin API key.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "subscriptions:", err)
		os.Exit(1)
	}
}
