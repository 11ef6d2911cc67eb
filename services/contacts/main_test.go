package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when goroutines started by run() (servers, relay, listeners, NATS and
// PostgreSQL clients) outlive it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
