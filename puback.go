package memphis

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
)

// PubAck is the broker's acknowledgement of a produced message.
type PubAck struct {
	// Station is the name of the station the message went to, as the
	// producer names it (lower-cased).
	Station string
	// Partition is the partition the message was stored in (0 for a legacy
	// station without partitions).
	Partition int
	// Sequence is the message's sequence number in its partition.
	Sequence uint64
	// Duplicate is true when the broker dropped the message because its
	// MsgId was seen inside the idempotency window.
	Duplicate bool
}

// jsPubAck is JetStream's publish acknowledgement.
type jsPubAck struct {
	Stream    string      `json:"stream"`
	Seq       uint64      `json:"seq"`
	Duplicate bool        `json:"duplicate"`
	Error     *jsAPIError `json:"error"`
}

func parsePubAck(m *nats.Msg) (PubAck, error) {
	if seq, dup, ok := scanPubAck(m.Data); ok {
		return PubAck{Sequence: seq, Duplicate: dup}, nil
	}
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		return PubAck{}, fmt.Errorf("%w: no stream accepts the message (was the station destroyed?)", ErrStationNotFound)
	}
	var pa jsPubAck
	if err := json.Unmarshal(m.Data, &pa); err != nil {
		return PubAck{}, fmt.Errorf("bad acknowledgement %q: %w", m.Data, err)
	}
	if pa.Error != nil {
		return PubAck{}, pa.Error.brokerError()
	}
	return PubAck{Sequence: pa.Seq, Duplicate: pa.Duplicate}, nil
}

// scanPubAck reads a successful acknowledgement as the server writes it —
// one flat JSON object such as {"stream":"s$1","domain":"d","seq":5,
// "duplicate":true} — without reflection or allocation. ok is false for
// anything else (an error, nesting, escapes, spaces), which is then left to
// encoding/json.
func scanPubAck(b []byte) (seq uint64, dup, ok bool) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return 0, false, false
	}
	b = b[1 : len(b)-1]
	haveSeq := false
	for len(b) > 0 {
		if b[0] != '"' {
			return 0, false, false
		}
		end := bytes.IndexByte(b[1:], '"')
		if end < 0 {
			return 0, false, false
		}
		key := b[1 : 1+end]
		b = b[2+end:]
		if len(b) == 0 || b[0] != ':' {
			return 0, false, false
		}
		b = b[1:]
		var val []byte
		str := len(b) > 0 && b[0] == '"'
		if str {
			end := bytes.IndexByte(b[1:], '"')
			if end < 0 {
				return 0, false, false
			}
			val, b = b[1:1+end], b[2+end:]
			if bytes.IndexByte(val, '\\') >= 0 {
				return 0, false, false
			}
		} else {
			end := bytes.IndexByte(b, ',')
			if end < 0 {
				end = len(b)
			}
			val, b = b[:end], b[end:]
		}
		switch string(key) {
		case "seq":
			// JSON numbers have no leading zeros; leave anything unusual
			// to encoding/json.
			if str || haveSeq || len(val) == 0 || len(val) > 19 || (len(val) > 1 && val[0] == '0') {
				return 0, false, false
			}
			for _, c := range val {
				if c < '0' || c > '9' {
					return 0, false, false
				}
				seq = seq*10 + uint64(c-'0')
			}
			haveSeq = true
		case "duplicate":
			switch {
			case !str && string(val) == "true":
				dup = true
			case !str && string(val) == "false":
				dup = false
			default:
				return 0, false, false
			}
		case "stream", "domain":
			if !str {
				return 0, false, false
			}
		default:
			// An error, or a field this parser does not know.
			return 0, false, false
		}
		if len(b) > 0 {
			if b[0] != ',' || len(b) == 1 {
				return 0, false, false
			}
			b = b[1:]
		}
	}
	return seq, dup, haveSeq
}
