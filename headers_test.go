package memphis

import (
	"errors"
	"testing"

	"github.com/memphisdev/memphis.go/internal/wire"
)

func TestHeadersZeroValueAndReservedPrefix(t *testing.T) {
	var h Headers // usable without New
	if err := h.Add("trace", "1"); err != nil {
		t.Fatal(err)
	}
	if err := h.Add("trace", "2"); err != nil {
		t.Fatal(err)
	}
	if got := h.Get("trace"); got != "1" {
		t.Errorf("Get = %q, want first value 1", got)
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
}

func TestBuildHeaderNeverWritesCallersMap(t *testing.T) {
	var h Headers
	_ = h.Add("k", "v")
	a := buildHeader(h.h, "conn", "prod", "id-1")
	b := buildHeader(h.h, "conn", "prod", "")
	if len(h.h) != 1 {
		t.Fatalf("caller's headers changed: %v", h.h)
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
	for _, k := range []string{wire.HdrProducedBy, wire.HdrMsgID, wire.HdrNatsMsgID, "$memphis_pm_id"} {
		if !isInternalHeader(k) {
			t.Errorf("%s should be hidden from GetHeaders", k)
		}
	}
	if isInternalHeader("k") {
		t.Error("a user header is hidden")
	}
}
