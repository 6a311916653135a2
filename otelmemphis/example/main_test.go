package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestExampleRuns runs the example as `go run` would and checks that it
// printed the spans of one trace, from the request to the handler, and
// the metrics.
func TestExampleRuns(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		`"Name": "send tracing"`, `"Name": "process tracing"`, `"Name": "bill order"`,
		`"Name": "messaging.client.sent.messages"`, `"Name": "memphis.consumer.lag"`,
		"POST /orders (internal)\n    send tracing (producer)\n      process tracing (consumer)\n        bill order (internal)",
		"the message carried traceparent 00-", "done",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", s)
	}
}
