package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that every process started by run() stopped all of its goroutines.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Keep-alive connections of the tests' own HTTP client (http.DefaultClient).
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
}
