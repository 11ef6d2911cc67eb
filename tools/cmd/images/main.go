// Command images builds every service's container image without Docker: static binaries
// (CGO_ENABLED=0) stamped with one version, each on a from-scratch base of CA certificates and a
// non-root user, written as image tarballs (`make images`).
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
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}
