package broker_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The broker's goroutines (its control plane and nats-server's) end with
// Shutdown; so do the test clients'.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
