package memphis

import (
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// Headers are user headers for a produced message. The zero value is ready
// to use; New is kept for code written against older SDK versions. Produce
// copies the headers, so one value can be shared by concurrent produces.
type Headers struct {
	h map[string][]string
}

// New empties the headers.
func (hdr *Headers) New() { hdr.h = make(map[string][]string) }

// Add appends a value to key. Keys starting with "$memphis" are reserved for
// the SDK and refused with ErrReservedHeader.
func (hdr *Headers) Add(key, value string) error {
	if err := checkHeaderKey(key); err != nil {
		return opErr("add header", "", err)
	}
	if hdr.h == nil {
		hdr.h = make(map[string][]string)
	}
	hdr.h[key] = append(hdr.h[key], value)
	return nil
}

// Get returns the first value of key, or "".
func (hdr *Headers) Get(key string) string {
	if v := hdr.h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Len is the number of keys.
func (hdr *Headers) Len() int { return len(hdr.h) }

func checkHeaderKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: header key can not be empty", ErrInvalidOption)
	}
	if strings.HasPrefix(key, wire.HdrReservedPrefix) {
		return fmt.Errorf("%w: %q", ErrReservedHeader, key)
	}
	return nil
}

// isInternalHeader tells the headers the SDK adds from the user's.
func isInternalHeader(key string) bool {
	return strings.HasPrefix(key, wire.HdrReservedPrefix) || key == wire.HdrMsgID || key == wire.HdrNatsMsgID
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
