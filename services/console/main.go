// Command console is "Settings → Webhook Integrations", the web console for account admins. It
// signs people in by the login links the platform's backend mints and calls the subscription
// service's WebhookService as the signed-in user. `console login-link` mints a link.
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
		fmt.Fprintln(os.Stderr, "console:", err)
		os.Exit(1)
	}
}
