package main_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The command runs as a child process; the SDK client in the test must leave no goroutines behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
