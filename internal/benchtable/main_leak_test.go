package main

import (
	"testing"

	"go.uber.org/goleak"
)

// The table builder starts no goroutines; this keeps it so.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
