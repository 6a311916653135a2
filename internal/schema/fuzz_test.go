package schema

import (
	"bytes"
	"errors"
	"testing"

	"github.com/memphisdev/memphis.go/internal/wire"
)

var fuzzSeeds = map[string][]string{
	Protobuf: {"", "\n\x01x\x12\x02\b\x03", "\x1a\x02\b\x01\"\x07\n\x01k\x12\x02\b\x01(\x80\x80\x80\x80\x80\x80\x80\x80\x01", "\xff\xff", "hello", "\x12\x03\x38\x01"},
	JSON:     {`{"name":"Ada","age":36}`, `{"name":"Ada","age":-1}`, `{"name":`, `[]`, `"x"`, `{"name":"a"} {}`, `1e999`},
	GraphQL:  {`{ person(name: "Ada") { name age } }`, `query Q($n: String!) { person(name: $n) { name } }`, `{ person { height } }`, `{`, `fragment F on Person { name } { person(name: "x") { ...F } }`},
	Avro:     {`{"name":"Ada","age":36}`, `{"name":"Ada","age":36.5}`, `{"name":"Ada","age":1,"email":{"string":"x"},"tags":["a"],"score":1e3}`, `{`, `null`},
}

// fuzzValidate feeds arbitrary bytes to a validator: nothing may panic,
// bytes are never refused as an unsupported Go type, accepted bytes are
// published unchanged, and Decode agrees with Validate.
func fuzzValidate(f *testing.F, typ string) {
	v := newValidator(f, typ, contents[typ])
	for _, s := range fuzzSeeds[typ] {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := v.Validate(data)
		if errors.Is(err, ErrUnsupportedMessage) {
			t.Fatalf("[]byte refused as unsupported: %v", err)
		}
		if err == nil && !bytes.Equal(out, data) {
			t.Fatalf("published %q for input %q", out, data)
		}
		_, derr := v.Decode(data)
		if (err == nil) != (derr == nil) {
			t.Fatalf("Validate and Decode disagree on %q: %v / %v", data, err, derr)
		}
		if typ != Protobuf {
			// The text forms mean the same as the bytes.
			_, serr := v.Validate(string(data))
			if (err == nil) != (serr == nil) {
				t.Fatalf("[]byte and string disagree on %q: %v / %v", data, err, serr)
			}
		}
	})
}

func FuzzValidateProtobuf(f *testing.F) { fuzzValidate(f, Protobuf) }
func FuzzValidateJSON(f *testing.F)     { fuzzValidate(f, JSON) }
func FuzzValidateGraphQL(f *testing.F)  { fuzzValidate(f, GraphQL) }
func FuzzValidateAvro(f *testing.F)     { fuzzValidate(f, Avro) }

var fuzzTypes = [...]string{Protobuf, JSON, GraphQL, Avro}

// FuzzDecode decodes arbitrary bytes with every schema type, including the
// avro schema that exercises each Avro type.
func FuzzDecode(f *testing.F) {
	validators := make([]Validator, 0, len(fuzzTypes)+1)
	for _, typ := range fuzzTypes {
		validators = append(validators, newValidator(f, typ, contents[typ]))
		for _, s := range fuzzSeeds[typ] {
			f.Add(uint8(len(validators)-1), []byte(s))
		}
	}
	validators = append(validators, newValidator(f, Avro, avroAllContent))
	f.Add(uint8(len(validators)-1), []byte(avroAllDoc))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		v := validators[int(which)%len(validators)]
		got, err := v.Decode(data)
		if err == nil && got == nil {
			t.Fatalf("Decode of %q gave nil without an error", data)
		}
	})
}

// FuzzCheckContent feeds arbitrary schema content to the broker-side check:
// it must not panic, and content it accepts must compile in the SDK too.
func FuzzCheckContent(f *testing.F) {
	for i, typ := range fuzzTypes {
		f.Add(uint8(i), contents[typ])
	}
	f.Add(uint8(3), avroAllContent)
	f.Add(uint8(0), `syntax = "proto3"; message {`)
	f.Add(uint8(1), `{"$ref":"#/$defs/a","$defs":{"a":{"type":"string"}}}`)
	f.Add(uint8(2), `schema { query: Q } type Q { a(x: Int = 1): [Int!] }`)
	f.Fuzz(func(t *testing.T, which uint8, content string) {
		typ := fuzzTypes[int(which)%len(fuzzTypes)]
		if err := CheckContent(typ, content); err != nil {
			return
		}
		su := wire.SchemaUpdateInit{SchemaName: "fz", SchemaType: typ, ActiveVersion: wire.SchemaVersion{VersionNumber: 1, SchemaContent: content}}
		if typ == Protobuf {
			desc, first, err := CompileProto("fz", content)
			if err != nil {
				t.Fatalf("CheckContent accepted proto content CompileProto refuses: %v\n%s", err, content)
			}
			if first == "" {
				return
			}
			su.ActiveVersion.Descriptor, su.ActiveVersion.MessageStructName = desc, first
		}
		if _, err := New(su); err != nil {
			t.Fatalf("CheckContent accepted %s content New refuses: %v\n%s", typ, err, content)
		}
	})
}
