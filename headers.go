package memphis

import (
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// Headers are the user headers of a message: given to MsgHeaders when
// producing, and returned by Msg.Headers when consuming. The zero value is
// ready to use; New is kept for code written against 1.x.
//
// Produce copies the headers, so one value can be shared by concurrent
// produces. Keys starting with "$memphis" are reserved for the broker and
// the SDK: Add refuses them, and so does Produce when one was put straight
// into MsgHeaders (ErrReservedHeader, and nothing is sent).
type Headers struct {
	// MsgHeaders holds the headers, each key with its values, as in 1.x. Add
	// and New write it; code may also read and write it directly. Default
	// nil: no headers.
	MsgHeaders map[string][]string
}

// New empties the headers.
func (hdr *Headers) New() { hdr.MsgHeaders = make(map[string][]string) }

// Add sets key to value, replacing any value key had, as 1.x did: one
// Headers reused for many produces carries each key once. Keys starting with
// "$memphis" are refused with ErrReservedHeader, an empty key with
// ErrInvalidOption. To send several values under one key, put them in
// MsgHeaders.
func (hdr *Headers) Add(key, value string) error {
	if err := checkHeaderKey(key); err != nil {
		return opErr("add header", "", err)
	}
	if hdr.MsgHeaders == nil {
		hdr.MsgHeaders = make(map[string][]string)
	}
	hdr.MsgHeaders[key] = []string{value}
	return nil
}

// Get returns the first value of key, or "".
func (hdr Headers) Get(key string) string {
	if v := hdr.MsgHeaders[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Len is the number of keys.
func (hdr Headers) Len() int { return len(hdr.MsgHeaders) }

// All yields every key with its values, in key order.
func (hdr Headers) All() iter.Seq2[string, []string] {
	return func(yield func(string, []string) bool) {
		for _, k := range slices.Sorted(maps.Keys(hdr.MsgHeaders)) {
			if !yield(k, hdr.MsgHeaders[k]) {
				return
			}
		}
	}
}

func checkHeaderKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: header key can not be empty", ErrInvalidOption)
	}
	if strings.HasPrefix(key, wire.HdrReservedPrefix) {
		return fmt.Errorf("%w: %q", ErrReservedHeader, key)
	}
	return nil
}

// checkHeaders applies Add's rules to every key, for headers that were put
// into MsgHeaders directly.
func checkHeaders(h map[string][]string) error {
	for k := range h {
		if err := checkHeaderKey(k); err != nil {
			return err
		}
	}
	return nil
}

// isHiddenHeader tells the headers a consumer does not see: the reserved
// ones, and the copy of the message id the SDK adds for stock JetStream.
// The Memphis message id itself ("msg-id") is shown, as every official SDK
// shows it.
func isHiddenHeader(key string) bool {
	return strings.HasPrefix(key, wire.HdrReservedPrefix) || key == wire.HdrNatsMsgID
}

// buildHeader makes the header block of one produced message: a copy of the
// user's headers plus the SDK's own. The user's map is never written to.
// The SDK's values share one backing array, so the block costs the map and
// one allocation beyond it.
func buildHeader(user map[string][]string, connID, producer, msgID string) nats.Header {
	n := 2
	if msgID != "" {
		n = 3
	}
	h := make(nats.Header, len(user)+n+1)
	for k, v := range user {
		h[k] = v
	}
	vals := make([]string, n)
	vals[0], vals[1] = connID, producer
	h[wire.HdrConnectionID] = vals[0:1:1]
	h[wire.HdrProducedBy] = vals[1:2:2]
	if msgID != "" {
		// Both headers, so the id de-duplicates on the Memphis broker (msg-id)
		// and on stock JetStream (Nats-Msg-Id).
		vals[2] = msgID
		h[wire.HdrMsgID] = vals[2:3:3]
		h[wire.HdrNatsMsgID] = vals[2:3:3]
	}
	return h
}
