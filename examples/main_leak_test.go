package examples_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The examples run as child processes; the test process itself must end with no goroutines left.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
