package schema

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Inputs fuzzing found; each once made a dependency panic or stall.

// A map entry whose key field repeats with another wire type makes the
// protobuf runtime's reflective decoder panic (proto/decode.go,
// unmarshalMap, protobuf-go v1.36.12).
func TestRegressionProtoRepeatedMapKey(t *testing.T) {
	v := newValidator(t, Protobuf, protoContent)
	data := []byte("\x1a\x02\b0\"\a\n\x01000\b0")
	if _, err := v.Decode(data); err == nil {
		t.Error("Decode accepted a malformed map entry")
	}
	if _, err := v.Validate(data); err == nil || errors.Is(err, ErrUnsupportedMessage) {
		t.Errorf("Validate: %v", err)
	}
}

// An empty union with a default makes the avro parser index an empty list.
func TestRegressionAvroEmptyUnionDefault(t *testing.T) {
	content := `{"type":"record","name":"A","fields":[{"name":"a","type":[],"default":10}]}`
	err := CheckContent(Avro, content)
	if err == nil || !strings.HasPrefix(err.Error(), "your Avro file is invalid: ") {
		t.Errorf("CheckContent: %v", err)
	}
	if _, err := New(update(t, Avro, content)); err == nil {
		t.Error("New accepted it")
	}
}

// The GraphQL "fields can merge" rule is quadratic in the fields of a
// selection set; without a cap this 46 KB query took seconds.
func TestRegressionGraphQLOverlapCap(t *testing.T) {
	v := newValidator(t, GraphQL, graphqlContent)
	q := "{" + strings.Repeat(`person(name:"a"){name} `, 2000) + "}"
	start := time.Now()
	if _, err := v.Decode([]byte(q)); err == nil {
		t.Error("query over the overlap cap accepted")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("validation took %v", d)
	}
	// A realistic operation with many fields stays well under the cap.
	many := "{" + strings.Repeat(`person(name:"a"){name age} `, 50) + "}"
	if _, err := v.Validate(many); err != nil {
		t.Errorf("50 merged fields: %v", err)
	}
}
