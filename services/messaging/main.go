// Command messaging receives inbound SMS from carriers (opt-outs, opt-ins, help, keywords),
// manages an account's numbers and keywords, sends replies through the SMS provider, and
// publishes inbound_message, contact_opt_out and keyword_opt_in through its outbox.
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
		fmt.Fprintln(os.Stderr, "messaging:", err)
		os.Exit(1)
	}
}
