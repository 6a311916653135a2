package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/graph-gophers/graphql-go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/memphisdev/memphis.go/internal/wire"
)

const (
	protoContent = `syntax = "proto3";
package pk;

message Outer {
  string id = 1;
  Inner in = 2;
  repeated Inner items = 3;
  map<string, Inner> by_key = 4;
  int64 big = 5;
}

message Inner {
  int32 n = 1;
}
`
	jsonContent = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "name": {"type": "string"},
    "age": {"type": "integer", "minimum": 0}
  },
  "required": ["name"]
}`
	graphqlContent = `type Query {
  person(name: String!): Person
}

type Person {
  name: String!
  age: Int
}
`
	avroContent = `{
  "type": "record",
  "name": "Person",
  "namespace": "ex",
  "fields": [
    {"name": "name", "type": "string"},
    {"name": "age", "type": "int"},
    {"name": "email", "type": ["null", "string"], "default": null},
    {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
    {"name": "score", "type": "double", "default": 0}
  ]
}`
)

var contents = map[string]string{
	Protobuf: protoContent,
	JSON:     jsonContent,
	GraphQL:  graphqlContent,
	Avro:     avroContent,
}

// update builds the schema update the broker would send for content.
func update(tb testing.TB, typ, content string) wire.SchemaUpdateInit {
	tb.Helper()
	su := wire.SchemaUpdateInit{
		SchemaName:    "test",
		SchemaType:    typ,
		ActiveVersion: wire.SchemaVersion{VersionNumber: 1, SchemaContent: content},
	}
	if typ == Protobuf {
		desc, first, err := CompileProto(su.SchemaName, content)
		if err != nil {
			tb.Fatalf("CompileProto: %v", err)
		}
		su.ActiveVersion.Descriptor = desc
		su.ActiveVersion.MessageStructName = first
	}
	return su
}

func newValidator(tb testing.TB, typ, content string) Validator {
	tb.Helper()
	v, err := New(update(tb, typ, content))
	if err != nil {
		tb.Fatalf("New(%s): %v", typ, err)
	}
	return v
}

// personJSON has json tags only; personAvro has avro tags only, so a test
// can tell which tags were used.
type personJSON struct {
	Name string `json:"name"`
	Age  int    `json:"age,omitempty"`
}

type personAvro struct {
	Name string `avro:"name"`
	Age  int    `avro:"age"`
}

// outer builds a pk.Outer message through the validator's own descriptor.
func outer(tb testing.TB, v Validator, id string, n int32) *dynamicpb.Message {
	tb.Helper()
	pv := v.(*protoValidator)
	m := dynamicpb.NewMessage(pv.desc)
	m.Set(pv.desc.Fields().ByName("id"), protoreflect.ValueOfString(id))
	in := dynamicpb.NewMessage(pv.desc.Fields().ByName("in").Message())
	in.Set(in.Descriptor().Fields().ByName("n"), protoreflect.ValueOfInt32(n))
	m.Set(pv.desc.Fields().ByName("in"), protoreflect.ValueOfMessage(in))
	return m
}

type want int

const (
	ok          want = iota
	invalid          // the payload does not match the schema
	unsupported      // the Go type is not taken by the schema type
)

func TestValidate(t *testing.T) {
	pv := newValidator(t, Protobuf, protoContent)
	good := outer(t, pv, "x", 3)
	goodBytes := mustMarshal(t, good)
	inner := dynamicpb.NewMessage(pv.(*protoValidator).desc.Fields().ByName("in").Message())
	inner.Set(inner.Descriptor().Fields().ByName("n"), protoreflect.ValueOfInt32(3))
	// Outer.in holding an Inner with a field 7 Inner does not define.
	var nestedUnknown []byte
	nestedUnknown = protowire.AppendTag(nestedUnknown, 2, protowire.BytesType)
	nestedUnknown = protowire.AppendBytes(nestedUnknown, protowire.AppendVarint(protowire.AppendTag(nil, 7, protowire.VarintType), 1))

	cases := []struct {
		typ, name string
		msg       any
		want      want
		out       []byte // published bytes, when the test pins them
	}{
		{Protobuf, "dynamic message", good, ok, goodBytes},
		{Protobuf, "wire bytes", goodBytes, ok, goodBytes},
		{Protobuf, "empty bytes", []byte{}, ok, []byte{}},
		{Protobuf, "map", map[string]any{"id": "x", "in": map[string]any{"n": 3}}, ok, goodBytes},
		{Protobuf, "map proto names", map[string]any{"by_key": map[string]any{"k": map[string]any{"n": 1}}}, ok, nil},
		{Protobuf, "map json names and int64 string", map[string]any{"byKey": map[string]any{}, "big": "9007199254740993"}, ok, nil},
		{Protobuf, "map wrong field type", map[string]any{"id": 5}, invalid, nil},
		{Protobuf, "map unknown field", map[string]any{"nope": 1}, invalid, nil},
		{Protobuf, "map not JSON-encodable", map[string]any{"id": math.NaN()}, invalid, nil},
		{Protobuf, "garbage bytes", []byte{0xff, 0xff, 0xff}, invalid, nil},
		{Protobuf, "text bytes", []byte("hello"), invalid, nil},
		{Protobuf, "bytes of another message", mustMarshal(t, inner), invalid, nil},
		{Protobuf, "nested unknown field", nestedUnknown, invalid, nil},
		{Protobuf, "another generated message", timestamppb.New(timestamppb.Now().AsTime()), invalid, nil},
		{Protobuf, "another dynamic message", inner, invalid, nil},
		{Protobuf, "string", "x", unsupported, nil},
		{Protobuf, "int", 5, unsupported, nil},
		{Protobuf, "struct", personJSON{Name: "Ada"}, unsupported, nil},
		{Protobuf, "nil", nil, unsupported, nil},

		{JSON, "map", map[string]any{"name": "Ada", "age": 36}, ok, []byte(`{"age":36,"name":"Ada"}`)},
		{JSON, "struct with json tags", personJSON{Name: "Ada", Age: 36}, ok, []byte(`{"name":"Ada","age":36}`)},
		{JSON, "pointer to struct", &personJSON{Name: "Ada"}, ok, []byte(`{"name":"Ada"}`)},
		{JSON, "bytes kept as given", []byte(` {"name": "Ada"} `), ok, []byte(` {"name": "Ada"} `)},
		{JSON, "string", `{"name":"Ada"}`, ok, []byte(`{"name":"Ada"}`)},
		{JSON, "raw message", json.RawMessage(`{"name":"Ada"}`), ok, []byte(`{"name":"Ada"}`)},
		{JSON, "missing required", map[string]any{"age": 1}, invalid, nil},
		{JSON, "below minimum", map[string]any{"name": "Ada", "age": -1}, invalid, nil},
		{JSON, "wrong type", map[string]any{"name": 5}, invalid, nil},
		{JSON, "not an object", 42, invalid, nil},
		{JSON, "broken JSON", []byte(`{"name":`), invalid, nil},
		{JSON, "trailing data", []byte(`{"name":"Ada"} {}`), invalid, nil},
		{JSON, "empty", []byte{}, invalid, nil},
		{JSON, "NaN", map[string]any{"name": "Ada", "age": math.NaN()}, invalid, nil},
		{JSON, "func", func() {}, unsupported, nil},
		{JSON, "channel", make(chan int), unsupported, nil},
		{JSON, "nil", nil, unsupported, nil},

		{GraphQL, "string", `{ person(name: "Ada") { name age } }`, ok, []byte(`{ person(name: "Ada") { name age } }`)},
		{GraphQL, "bytes", []byte(`query Q { person(name: "Ada") { name } }`), ok, []byte(`query Q { person(name: "Ada") { name } }`)},
		{GraphQL, "unknown field", `{ person(name: "Ada") { height } }`, invalid, nil},
		{GraphQL, "missing argument", `{ person { name } }`, invalid, nil},
		{GraphQL, "syntax error", `{ person(`, invalid, nil},
		{GraphQL, "no operation", ``, invalid, nil},
		{GraphQL, "map", map[string]any{"query": "{}"}, unsupported, nil},
		{GraphQL, "int", 1, unsupported, nil},
		{GraphQL, "nil", nil, unsupported, nil},

		{Avro, "map with Go int for int", map[string]any{"name": "Ada", "age": 36}, ok, []byte(`{"age":36,"name":"Ada"}`)},
		{Avro, "bytes with whole float for int", []byte(`{"name":"Ada","age":36.0}`), ok, []byte(`{"name":"Ada","age":36.0}`)},
		{Avro, "string", `{"name":"Ada","age":1,"email":"a@b.c","tags":["x"],"score":1.5}`, ok, nil},
		{Avro, "raw message", json.RawMessage(`{"name":"Ada","age":1}`), ok, nil},
		{Avro, "union in Avro JSON form", []byte(`{"name":"Ada","age":1,"email":{"string":"a@b.c"}}`), ok, nil},
		{Avro, "struct with avro tags", personAvro{Name: "Ada", Age: 36}, ok,
			[]byte(`{"age":36,"email":null,"name":"Ada","score":0,"tags":[]}`)},
		{Avro, "pointer to struct", &personAvro{Name: "Ada", Age: 36}, ok, nil},
		{Avro, "extra keys ignored", map[string]any{"name": "Ada", "age": 1, "x": true}, ok, nil},
		{Avro, "missing field", map[string]any{"name": "Ada"}, invalid, nil},
		{Avro, "fraction for int", map[string]any{"name": "Ada", "age": 36.5}, invalid, nil},
		{Avro, "int out of range", map[string]any{"name": "Ada", "age": int64(math.MaxInt32) + 1}, invalid, nil},
		{Avro, "string for int", map[string]any{"name": "Ada", "age": "36"}, invalid, nil},
		{Avro, "union branch missing", map[string]any{"name": "Ada", "age": 1, "email": 5}, invalid, nil},
		{Avro, "array item", map[string]any{"name": "Ada", "age": 1, "tags": []any{"a", 1}}, invalid, nil},
		{Avro, "array", []byte(`[1]`), invalid, nil},
		{Avro, "broken JSON", []byte(`{`), invalid, nil},
		{Avro, "struct with wrong field type", struct {
			Name int `avro:"name"`
		}{1}, invalid, nil},
		{Avro, "struct with json tags only", personJSON{Name: "Ada", Age: 1}, invalid, nil},
		{Avro, "int", 5, unsupported, nil},
		{Avro, "slice", []any{1}, unsupported, nil},
		{Avro, "nil pointer", (*personAvro)(nil), unsupported, nil},
		{Avro, "nil", nil, unsupported, nil},
	}
	validators := map[string]Validator{Protobuf: pv}
	for _, typ := range []string{JSON, GraphQL, Avro} {
		validators[typ] = newValidator(t, typ, contents[typ])
	}
	for _, c := range cases {
		t.Run(c.typ+"/"+c.name, func(t *testing.T) {
			v := validators[c.typ]
			out, err := v.Validate(c.msg)
			switch c.want {
			case ok:
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if c.out != nil && !bytes.Equal(out, c.out) {
					t.Errorf("published %q, want %q", out, c.out)
				}
				// What a producer publishes, a consumer decodes.
				if _, err := v.Decode(out); err != nil {
					t.Errorf("Decode of published bytes %q: %v", out, err)
				}
			case invalid:
				if err == nil {
					t.Fatalf("Validate accepted it: %q", out)
				}
				if errors.Is(err, ErrUnsupportedMessage) {
					t.Fatalf("got ErrUnsupportedMessage for a payload error: %v", err)
				}
				if out != nil {
					t.Errorf("bytes returned with an error: %q", out)
				}
			case unsupported:
				if !errors.Is(err, ErrUnsupportedMessage) {
					t.Fatalf("want ErrUnsupportedMessage, got %v", err)
				}
			}
		})
	}
}

func TestDecode(t *testing.T) {
	pv := newValidator(t, Protobuf, protoContent)
	good := outer(t, pv, "x", 3)
	good.Set(pv.(*protoValidator).desc.Fields().ByName("big"), protoreflect.ValueOfInt64(1<<60))
	cases := []struct {
		typ, name string
		data      []byte
		want      any // nil: must fail
	}{
		{Protobuf, "message", mustMarshal(t, good), map[string]any{"id": "x", "in": map[string]any{"n": 3.0}, "big": "1152921504606846976"}},
		{Protobuf, "empty", []byte{}, map[string]any{}},
		{Protobuf, "garbage", []byte{0xff}, nil},
		{Protobuf, "plain text", []byte("hello world"), nil},
		{JSON, "object", []byte(`{"name":"Ada","age":36}`), map[string]any{"name": "Ada", "age": 36.0}},
		{JSON, "not JSON", []byte(`hello`), nil},
		{JSON, "not matching", []byte(`{"age":36}`), nil},
		{GraphQL, "query", []byte(`{ person(name: "A") { name } }`), `{ person(name: "A") { name } }`},
		{GraphQL, "not a query", []byte(`hello`), nil},
		{GraphQL, "not matching", []byte(`{ nope }`), nil},
		{Avro, "record", []byte(`{"name":"Ada","age":36,"email":{"string":"a@b"}}`),
			map[string]any{"name": "Ada", "age": 36.0, "email": map[string]any{"string": "a@b"}}},
		{Avro, "not JSON", []byte(`{"name"`), nil},
		{Avro, "not matching", []byte(`{"name":"Ada"}`), nil},
	}
	validators := map[string]Validator{Protobuf: pv}
	for _, typ := range []string{JSON, GraphQL, Avro} {
		validators[typ] = newValidator(t, typ, contents[typ])
	}
	for _, c := range cases {
		t.Run(c.typ+"/"+c.name, func(t *testing.T) {
			got, err := validators[c.typ].Decode(c.data)
			if c.want == nil {
				if err == nil {
					t.Fatalf("Decode accepted %q: %#v", c.data, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !jsonEqual(got, c.want) {
				t.Errorf("Decode = %#v, want %#v", got, c.want)
			}
		})
	}
}

func TestCheckContent(t *testing.T) {
	_, gqlErr := graphql.ParseSchema("type Query {", nil)
	if gqlErr == nil {
		t.Fatal("graphql-go accepted a broken schema")
	}
	cases := []struct {
		typ, content string
		want         string // "" means valid
	}{
		{JSON, "", "your schema content is invalid"},
		{Protobuf, "", "your schema content is invalid"},
		{"xml", "", "your schema content is invalid"},
		{JSON, jsonContent, ""},
		{JSON, `{"type":12}`, "your json schema is invalid"},
		{JSON, `{"type":`, "your json schema is invalid"},
		{JSON, `{"$ref":"https://example.com/other.json"}`, "your json schema is invalid"},
		{JSON, `{"$ref":"other.json"}`, "your json schema is invalid"},
		{JSON, `{"$defs":{"n":{"type":"integer"}},"$ref":"#/$defs/n"}`, ""},
		{JSON, `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object"}`, ""},
		{Protobuf, protoContent, ""},
		{Protobuf, `syntax = "proto3"; message {`, "your Proto file is invalid: :1:28: syntax error: unexpected '{'"},
		{Protobuf, "syntax = \"proto3\";\nmessage {", "your Proto file is invalid: :2:9: syntax error: unexpected '{'"},
		{Protobuf, `syntax = "proto3"; message A { B b = 1; }`, "your Proto file is invalid: :1:32: field A.b: unknown type B"},
		{Protobuf, `syntax = "proto3"; import "google/protobuf/timestamp.proto"; message A { google.protobuf.Timestamp t = 1; }`, ""},
		{GraphQL, graphqlContent, ""},
		{GraphQL, "type Query {", gqlErr.Error()},
		{GraphQL, "type Foo { a: Int }", `root operation "query" must be defined`},
		{Avro, avroContent, ""},
		{Avro, `{"type":"nosuchtype"}`, "your Avro file is invalid: avro: unknown type: nosuchtype"},
		{Avro, `{"type":"record","name":"R","fields":[{"name":"a","type":"Other"}]}`, "your Avro file is invalid: avro: unknown type: Other"},
	}
	for _, c := range cases {
		err := CheckContent(c.typ, c.content)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("CheckContent(%s, %q) = %v, want nil", c.typ, c.content, err)
		case c.want != "" && (err == nil || err.Error() != c.want):
			t.Errorf("CheckContent(%s, %q) = %v, want %q", c.typ, c.content, err, c.want)
		}
	}

	err := CheckContent("xml", "<a/>")
	if !errors.Is(err, ErrUnknownType) {
		t.Errorf("unknown type: got %v, want ErrUnknownType", err)
	}
	// The parser's own error stays reachable behind the broker's text.
	if err := CheckContent(JSON, `{"type":12}`); errors.Unwrap(err) == nil {
		t.Errorf("json: cause not wrapped: %v", err)
	}
}

// TestCheckContentIsolatesAvroNames guards against the avro library's
// process-wide cache: a type defined by one schema must not satisfy a
// reference in another.
func TestCheckContentIsolatesAvroNames(t *testing.T) {
	if err := CheckContent(Avro, `{"type":"record","name":"Shared","fields":[{"name":"a","type":"int"}]}`); err != nil {
		t.Fatal(err)
	}
	err := CheckContent(Avro, `{"type":"record","name":"User","fields":[{"name":"s","type":"Shared"}]}`)
	if err == nil || !strings.HasPrefix(err.Error(), "your Avro file is invalid: ") {
		t.Fatalf("reference to another schema's type: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	cases := []struct {
		name string
		su   wire.SchemaUpdateInit
	}{
		{"unknown type", wire.SchemaUpdateInit{SchemaName: "s", SchemaType: "xml", ActiveVersion: wire.SchemaVersion{SchemaContent: "<a/>"}}},
		{"json bad content", wire.SchemaUpdateInit{SchemaName: "s", SchemaType: JSON, ActiveVersion: wire.SchemaVersion{SchemaContent: `{"type":12}`}}},
		{"graphql bad content", wire.SchemaUpdateInit{SchemaName: "s", SchemaType: GraphQL, ActiveVersion: wire.SchemaVersion{SchemaContent: `type Query {`}}},
		{"avro bad content", wire.SchemaUpdateInit{SchemaName: "s", SchemaType: Avro, ActiveVersion: wire.SchemaVersion{SchemaContent: `{"type":"x"}`}}},
		{"protobuf nothing", wire.SchemaUpdateInit{SchemaName: "s", SchemaType: Protobuf}},
		{"protobuf bad descriptor", wire.SchemaUpdateInit{SchemaName: "s", SchemaType: Protobuf, ActiveVersion: wire.SchemaVersion{Descriptor: "!!!", MessageStructName: "A"}}},
		{"protobuf bad content", wire.SchemaUpdateInit{SchemaName: "s", SchemaType: Protobuf, ActiveVersion: wire.SchemaVersion{SchemaContent: "message {", MessageStructName: "A"}}},
	}
	for _, c := range cases {
		if v, err := New(c.su); err == nil {
			t.Errorf("%s: New succeeded: %T", c.name, v)
		}
	}
	if _, err := New(cases[0].su); !errors.Is(err, ErrUnknownType) {
		t.Errorf("unknown type: %v, want ErrUnknownType", err)
	}
}

// TestConcurrentUse runs every validator from several goroutines; run
// with -race it checks that validators share no mutable state.
func TestConcurrentUse(t *testing.T) {
	msgs := map[string]any{
		Protobuf: map[string]any{"id": "x", "in": map[string]any{"n": 3}},
		JSON:     map[string]any{"name": "Ada", "age": 36},
		GraphQL:  `{ person(name: "Ada") { name age } }`,
		Avro:     personAvro{Name: "Ada", Age: 36},
	}
	for typ, msg := range msgs {
		v := newValidator(t, typ, contents[typ])
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 50 {
						out, err := v.Validate(msg)
						if err != nil {
							t.Error(err)
							return
						}
						if _, err := v.Decode(out); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

func mustMarshal(tb testing.TB, m proto.Message) []byte {
	tb.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// jsonEqual compares two decoded documents through their JSON text, which
// ignores map order and the concrete map types.
func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}
