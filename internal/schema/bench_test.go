package schema

import "testing"

// benchMessages are small, typical messages, one per schema type, in the
// form a producer most likely passes.
func benchMessages(b *testing.B) map[string]struct {
	v   Validator
	msg any
} {
	b.Helper()
	pv := newValidator(b, Protobuf, protoContent)
	m := map[string]struct {
		v   Validator
		msg any
	}{
		Protobuf: {pv, outer(b, pv, "order-1", 3)},
		JSON:     {newValidator(b, JSON, jsonContent), map[string]any{"name": "Ada", "age": 36}},
		GraphQL:  {newValidator(b, GraphQL, graphqlContent), `{ person(name: "Ada") { name age } }`},
		Avro:     {newValidator(b, Avro, avroContent), map[string]any{"name": "Ada", "age": 36}},
	}
	return m
}

func BenchmarkValidate(b *testing.B) {
	msgs := benchMessages(b)
	for _, typ := range fuzzTypes {
		c := msgs[typ]
		b.Run(typ, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.v.Validate(c.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkValidateForms covers the other message forms.
func BenchmarkValidateForms(b *testing.B) {
	msgs := benchMessages(b)
	forms := []struct {
		name, typ string
		msg       func() any
	}{
		{"protobuf-bytes", Protobuf, func() any { out, _ := msgs[Protobuf].v.Validate(msgs[Protobuf].msg); return out }},
		{"protobuf-map", Protobuf, func() any { return map[string]any{"id": "order-1", "in": map[string]any{"n": 3}} }},
		{"json-bytes", JSON, func() any { return []byte(`{"name":"Ada","age":36}`) }},
		{"json-struct", JSON, func() any { return personJSON{Name: "Ada", Age: 36} }},
		{"avro-bytes", Avro, func() any { return []byte(`{"name":"Ada","age":36}`) }},
		{"avro-struct", Avro, func() any { return personAvro{Name: "Ada", Age: 36} }},
	}
	for _, f := range forms {
		v, msg := msgs[f.typ].v, f.msg()
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Validate(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	msgs := benchMessages(b)
	for _, typ := range fuzzTypes {
		c := msgs[typ]
		data, err := c.v.Validate(c.msg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(typ, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.v.Decode(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
