package app_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the sender leaves no goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
