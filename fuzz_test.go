package memphis

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// Fuzz targets for what the SDK takes from users and from the wire. Run
// them with `make fuzz` (FUZZTIME each); the seeds run in every `go test`.

// FuzzHeaders: any key and value either goes into the headers or is refused
// with a typed error; reserved keys never get in, and the SDK's own headers
// never reach a consumer's GetHeaders (the message id does, as in 1.x).
func FuzzHeaders(f *testing.F) {
	for _, s := range [][2]string{{"k", "v"}, {"", ""}, {"$memphis_x", "v"}, {"msg-id", "1"}, {"Nats-Msg-Id", "x"}, {"ü\x00", "\xff"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, key, value string) {
		var h Headers
		err := h.Add(key, value)
		switch {
		case key == "" || strings.HasPrefix(key, wire.HdrReservedPrefix):
			if err == nil {
				t.Fatalf("key %q accepted", key)
			}
			if !errors.Is(err, ErrReservedHeader) && !errors.Is(err, ErrInvalidOption) {
				t.Fatalf("key %q: untyped error %v", key, err)
			}
			return
		case err != nil:
			t.Fatalf("key %q refused: %v", key, err)
		}
		if err := checkHeaders(h.MsgHeaders); err != nil {
			t.Fatalf("Add accepted %q but Produce would refuse it: %v", key, err)
		}
		hdr := buildHeader(h.MsgHeaders, "conn", "prod", value)
		m := newMsg(&nats.Msg{Subject: "s", Header: hdr}, nil, 1)
		got := m.GetHeaders()
		for k := range got {
			if isHiddenHeader(k) {
				t.Fatalf("internal header %q reached GetHeaders", k)
			}
		}
		// An empty id is no id, so then only the user's own value shows.
		if value != "" && got[wire.HdrMsgID] != value {
			t.Fatalf("msg-id = %q, want %q", got[wire.HdrMsgID], value)
		}
		if !isHiddenHeader(key) && key != wire.HdrMsgID && got[key] != value {
			t.Fatalf("header %q = %q, want %q", key, got[key], value)
		}
		if m.GetHeader(key) != got[key] {
			t.Fatalf("GetHeader(%q) = %q, GetHeaders has %q", key, m.GetHeader(key), got[key])
		}
	})
}

// FuzzNames: name validation never panics, accepts exactly the broker's
// alphabet and lengths, and returns ErrInvalidName otherwise.
func FuzzNames(f *testing.F) {
	for _, s := range []string{"", "a", "Orders.EU", "-a", "a-", "a#b", strings.Repeat("x", 129), "ünï"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		for _, obj := range []string{wire.ObjStation, wire.ObjProducer, wire.ObjConsumer, wire.ObjSchema} {
			got, err := checkName(obj, name)
			if err != nil {
				if !errors.Is(err, ErrInvalidName) {
					t.Fatalf("%s %q: untyped error %v", obj, name, err)
				}
				continue
			}
			if got == "" || len(got) > wire.MaxNameLen || !utf8.ValidString(got) {
				t.Fatalf("%s %q accepted as %q", obj, name, got)
			}
			if strings.ContainsAny(got, "#$ *>") {
				t.Fatalf("%s %q accepted with a subject-breaking character", obj, name)
			}
		}
	})
}

// FuzzMessageDecoding: whatever arrives on a pull inbox, reading a message
// never panics; status messages are classified, not delivered.
func FuzzMessageDecoding(f *testing.F) {
	f.Add("$JS.ACK.s$1.c.1.5.5.1700000000000000000.0", "Status", "100", []byte("x"))
	f.Add("", "Nats-Pending-Messages", "-3", []byte(nil))
	f.Add("$JS.ACK.a.b", "$memphis_pm_id", "abc", []byte("{}"))
	f.Fuzz(func(t *testing.T, reply, hk, hv string, data []byte) {
		raw := &nats.Msg{Subject: "inbox", Reply: reply, Data: data, Header: nats.Header{hk: {hv}}}
		_, _, _ = classify(raw)
		m := newMsg(raw, nil, 1)
		_ = m.GetHeaders()
		_, _ = m.GetSequenceNumber()
		_, _ = m.GetTimeSent()
		_, _ = m.DeliveryCount()
		_ = m.Data()
	})
}
