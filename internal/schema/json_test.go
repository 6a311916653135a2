package schema

import (
	"encoding/json"
	"testing"
)

// TestJSONExactNumbers: numbers are validated as written, not as float64,
// which would round 2^53+1 down to 2^53.
func TestJSONExactNumbers(t *testing.T) {
	v := newValidator(t, JSON, `{"type":"integer","maximum":9007199254740992}`)
	if _, err := v.Validate([]byte("9007199254740992")); err != nil {
		t.Errorf("2^53: %v", err)
	}
	if _, err := v.Validate([]byte("9007199254740993")); err == nil {
		t.Error("2^53+1 passed a maximum of 2^53")
	}
}

func TestJSONDecodeTypes(t *testing.T) {
	v := newValidator(t, JSON, `{"type":"object","properties":{"list":{"type":"array"}}}`)
	got, err := v.Decode([]byte(`{"n":1,"list":[2,"x",{"m":3.5}],"big":1e400}`))
	if err != nil {
		t.Fatal(err)
	}
	obj, ok := got.(map[string]any)
	if !ok {
		t.Fatalf("Decode gave %T, want map[string]any", got)
	}
	if n, ok := obj["n"].(float64); !ok || n != 1 {
		t.Errorf("n = %#v, want float64 1", obj["n"])
	}
	list := obj["list"].([]any)
	if m := list[2].(map[string]any)["m"]; m != 3.5 {
		t.Errorf("nested number = %#v, want 3.5", m)
	}
	// Too large for a float64: kept exactly rather than failing.
	if big, ok := obj["big"].(json.Number); !ok || big != "1e400" {
		t.Errorf("big = %#v, want json.Number 1e400", obj["big"])
	}
}

func TestJSONScalarsAndRefs(t *testing.T) {
	v := newValidator(t, JSON, `{"$defs":{"pos":{"type":"integer","minimum":1}},"type":"array","items":{"$ref":"#/$defs/pos"}}`)
	if _, err := v.Validate([]int{1, 2}); err != nil {
		t.Errorf("slice: %v", err)
	}
	if _, err := v.Validate([]int{0}); err == nil {
		t.Error("item below minimum passed through $ref")
	}
	s := newValidator(t, JSON, `{"type":"string"}`)
	// A string message is JSON text, so a JSON string needs its quotes.
	if _, err := s.Validate(`"hello"`); err != nil {
		t.Errorf(`"hello": %v`, err)
	}
	if _, err := s.Validate(`hello`); err == nil {
		t.Error("unquoted text passed as a JSON string")
	}
}
