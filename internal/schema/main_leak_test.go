package schema

import (
	"testing"

	"go.uber.org/goleak"
)

// The validators start no goroutines; this keeps it so.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
