package memphis

import (
	"testing"
	"time"
)

func TestAckPending(t *testing.T) {
	for _, tc := range []struct {
		reply   string
		pending int
		ok      bool
	}{
		{"$JS.ACK.orders$1.cg.1.42.40.1700000000000000000.977", 977, true},
		{"$JS.ACK.hub.ACCHASH.orders$1.cg.1.42.40.1700000000000000000.12.rnd", 12, true},
		{"$JS.ACK.hub.ACCHASH.orders$1.cg.1.42.40.1700000000000000000.12", 12, true},
		{"$JS.ACK.orders$1.cg.1.42.40.1700000000000000000.x", 0, false},
		{"_INBOX.abc", 0, false},
		{"", 0, false},
	} {
		got, ok := ackPending(tc.reply)
		if got != tc.pending || ok != tc.ok {
			t.Errorf("ackPending(%q) = %d, %v; want %d, %v", tc.reply, got, ok, tc.pending, tc.ok)
		}
	}
}

func TestAdaptDepth(t *testing.T) {
	const size = 10 // pullDepth 64, maxPullDepth 512
	ack := func(pending string) string { return "$JS.ACK.s$1.cg.1.5.5.1700000000000000000." + pending }
	const ackTime = 30 * time.Second
	for _, tc := range []struct {
		name             string
		depth            int
		awaited, blocked bool
		reply            string
		perMsg           time.Duration
		want             int
	}{
		{"awaited with a backlog: deeper", 64, true, false, ack("1000"), time.Microsecond, 128},
		{"pace unknown yet: unchanged", 64, true, false, ack("1000"), 0, 64},
		{"at most maxPullDepth", 512, true, false, ack("100000"), time.Microsecond, 512},
		{"no backlog beyond the depth: unchanged", 128, true, false, ack("100"), time.Microsecond, 128},
		{"not awaited: unchanged", 128, false, false, ack("100000"), time.Microsecond, 128},
		{"blocked: halved", 512, false, true, ack("100000"), time.Microsecond, 256},
		{"never below pullDepth", 64, false, true, ack("100000"), time.Microsecond, 64},
		{"an ack subject not understood: unchanged", 128, true, false, "_INBOX.x", time.Microsecond, 128},
		// 30 ms a message: a quarter of 30 s is 250 messages.
		{"capped by the handler's pace", 256, true, false, ack("100000"), 30 * time.Millisecond, 250},
		{"a slow handler: pullDepth", 512, false, false, ack("100000"), time.Second, 64},
	} {
		if got := adaptDepth(tc.depth, size, tc.awaited, tc.blocked, tc.reply, tc.perMsg, ackTime); got != tc.want {
			t.Errorf("%s: adaptDepth(%d) = %d, want %d", tc.name, tc.depth, got, tc.want)
		}
	}
}
