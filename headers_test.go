package memphis

import (
	"errors"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go/internal/wire"
)

func TestHeadersZeroValueAndReservedPrefix(t *testing.T) {
	var h Headers // usable without New
	if err := h.Add("trace", "1"); err != nil {
		t.Fatal(err)
	}
	// Add replaces, as in 1.x: one Headers reused for many produces carries
	// each key once, with its latest value.
	if err := h.Add("trace", "2"); err != nil {
		t.Fatal(err)
	}
	if got := h.MsgHeaders["trace"]; len(got) != 1 || got[0] != "2" {
		t.Errorf("MsgHeaders[trace] = %q, want [2]", got)
	}
	if got := h.Get("trace"); got != "2" {
		t.Errorf("Get = %q, want 2", got)
	}
	for _, k := range []string{"$memphis", "$memphis_producedBy", "$memphisx"} {
		if err := h.Add(k, "v"); !errors.Is(err, ErrReservedHeader) {
			t.Errorf("Add(%q): err = %v, want ErrReservedHeader", k, err)
		}
	}
	if err := h.Add("", "v"); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("empty key: err = %v, want ErrInvalidOption", err)
	}
	if h.Len() != 1 {
		t.Errorf("Len = %d, want 1", h.Len())
	}
	h.New()
	if h.Len() != 0 || h.MsgHeaders == nil {
		t.Errorf("after New: %#v, want an empty map", h.MsgHeaders)
	}
}

func TestHeadersAllInKeyOrder(t *testing.T) {
	h := Headers{MsgHeaders: map[string][]string{"b": {"2", "3"}, "a": {"1"}, "c": nil}}
	var keys []string
	var vals [][]string
	for k, v := range h.All() {
		keys = append(keys, k)
		vals = append(vals, v)
	}
	if !slices.Equal(keys, []string{"a", "b", "c"}) {
		t.Fatalf("keys = %q, want a b c", keys)
	}
	if !slices.Equal(vals[1], []string{"2", "3"}) {
		t.Errorf("values of b = %q", vals[1])
	}
	for k := range h.All() { // stopping early must not panic
		if k == "a" {
			break
		}
	}
	for range (Headers{}).All() {
		t.Fatal("the zero Headers yielded a header")
	}
}

func TestCheckHeadersRefusesWhatAddRefuses(t *testing.T) {
	for key, want := range map[string]error{"$memphis_connectionId": ErrReservedHeader, "": ErrInvalidOption} {
		err := checkHeaders(map[string][]string{"ok": {"1"}, key: {"x"}})
		if !errors.Is(err, want) {
			t.Errorf("key %q: err = %v, want %v", key, err, want)
		}
	}
	if err := checkHeaders(map[string][]string{"msg-id": {"1"}, "k": nil}); err != nil {
		t.Errorf("user keys refused: %v", err)
	}
}

func TestBuildHeaderNeverWritesCallersMap(t *testing.T) {
	var h Headers
	_ = h.Add("k", "v")
	a := buildHeader(h.MsgHeaders, "conn", "prod", "id-1")
	b := buildHeader(h.MsgHeaders, "conn", "prod", "")
	if len(h.MsgHeaders) != 1 {
		t.Fatalf("caller's headers changed: %v", h.MsgHeaders)
	}
	if a.Get(wire.HdrMsgID) != "id-1" || a.Get(wire.HdrNatsMsgID) != "id-1" {
		t.Errorf("msg id headers missing: %v", a)
	}
	if b.Get(wire.HdrMsgID) != "" || b.Get(wire.HdrNatsMsgID) != "" {
		t.Errorf("a msg id stuck to a later message: %v", b)
	}
	if b.Get(wire.HdrProducedBy) != "prod" || b.Get(wire.HdrConnectionID) != "conn" || b.Get("k") != "v" {
		t.Errorf("headers = %v", b)
	}
	for _, k := range []string{wire.HdrProducedBy, wire.HdrConnectionID, wire.HdrNatsMsgID, "$memphis_pm_id"} {
		if !isHiddenHeader(k) {
			t.Errorf("%s should be hidden from GetHeaders", k)
		}
	}
	// The Memphis message id shows, as in 1.x and the other SDKs.
	for _, k := range []string{"k", wire.HdrMsgID} {
		if isHiddenHeader(k) {
			t.Errorf("%s is hidden", k)
		}
	}
}

func TestMsgHeadersCopiesEveryValue(t *testing.T) {
	raw := nats.Header{"k": {"1", "2"}, wire.HdrMsgID: {"id"}, wire.HdrNatsMsgID: {"id"}, wire.HdrProducedBy: {"p"}}
	m := newMsg(&nats.Msg{Subject: "s", Header: raw}, nil, 1)
	h := m.Headers()
	if len(h.MsgHeaders) != 2 || !slices.Equal(h.MsgHeaders["k"], []string{"1", "2"}) || h.Get(wire.HdrMsgID) != "id" {
		t.Fatalf("Headers() = %v", h.MsgHeaders)
	}
	h.MsgHeaders["k"][0] = "changed"
	if raw["k"][0] != "1" {
		t.Error("writing to Headers() changed the message")
	}
	if g := m.GetHeaders(); len(g) != 2 || g["k"] != "1" || g[wire.HdrMsgID] != "id" {
		t.Errorf("GetHeaders() = %v", g)
	}
}
