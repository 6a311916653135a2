package memphis_test

import (
	"strings"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go"
)

// schemaBenchSize is the size of every payload BenchmarkProduceSchema
// publishes, whatever the schema type, so the sub-benchmarks differ only in
// the validation (and, for the non-[]byte forms, encoding) they do.
const schemaBenchSize = 128

// BenchmarkProduceSchema measures synchronous produce to a station
// enforcing each schema type, against "none/bytes": the same size of
// payload to a station without a schema, in the same run. Sub-benchmarks
// are <type>/<message form>; compare ns/op and allocs/op with none/bytes.
func BenchmarkProduceSchema(b *testing.B) {
	broker := benchBroker(b)
	c := connect(b, broker)
	// pad returns a name that makes the payload built by f exactly
	// schemaBenchSize bytes long.
	pad := func(f func(name string) []byte) string {
		for n := schemaBenchSize; n >= 0; n-- {
			if name := strings.Repeat("x", n); len(f(name)) == schemaBenchSize {
				return name
			}
		}
		b.Fatal("no name pads the payload to size")
		return ""
	}
	md := compileProto(b, "person.proto", "", "Person")
	protoBytes := func(name string) []byte {
		return mustMarshal(b, dynMessage(md, map[string]any{"name": name, "age": int32(36)}))
	}
	jsonBytes := func(name string) []byte { return []byte(`{"name":"` + name + `","age":36}`) }
	gqlBytes := func(name string) []byte { return []byte(`{ person(name: "` + name + `") { name age } }`) }
	pName, jName, gName := pad(protoBytes), pad(jsonBytes), pad(gqlBytes)

	cases := []struct {
		name, typ string
		msg       any
	}{
		{"none/bytes", "", make([]byte, schemaBenchSize)},
		{"protobuf/bytes", memphis.SchemaTypeProtobuf, protoBytes(pName)},
		{"protobuf/dynamicpb", memphis.SchemaTypeProtobuf, dynMessage(md, map[string]any{"name": pName, "age": int32(36)})},
		{"protobuf/map", memphis.SchemaTypeProtobuf, map[string]any{"name": pName, "age": 36}},
		{"json/bytes", memphis.SchemaTypeJSON, jsonBytes(jName)},
		{"json/map", memphis.SchemaTypeJSON, map[string]any{"name": jName, "age": 36}},
		{"json/struct", memphis.SchemaTypeJSON, jsonPerson{Name: jName, Age: 36}},
		{"graphql/bytes", memphis.SchemaTypeGraphQL, gqlBytes(gName)},
		{"graphql/string", memphis.SchemaTypeGraphQL, string(gqlBytes(gName))},
		{"avro/bytes", memphis.SchemaTypeAvro, jsonBytes(jName)},
		{"avro/map", memphis.SchemaTypeAvro, map[string]any{"name": jName, "age": 36}},
		{"avro/struct", memphis.SchemaTypeAvro, avroPerson{Name: jName, Age: 36}},
	}
	schemas := map[string]string{}
	for _, typ := range schemaTypes {
		schemas[typ] = createSchema(b, c, typ)
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var opts []memphis.StationOpt
			if tc.typ != "" {
				opts = append(opts, memphis.SchemaName(schemas[tc.typ]))
			}
			station := schemaStation(b, c, "bsch", opts...)
			p, err := c.CreateProducer(station, "p")
			if err != nil {
				b.Fatal(err)
			}
			// Every message must be stored at the benchmark's size.
			cons, err := c.CreateConsumer(station, "c")
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Produce(tc.msg); err != nil {
				b.Fatal(err)
			}
			if n := len(fetchAll(b, cons, 1, 10*time.Second)[0].Data()); n != schemaBenchSize {
				b.Fatalf("payload stored with %d bytes, want %d", n, schemaBenchSize)
			}
			if err := cons.Destroy(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(schemaBenchSize)
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if err := p.Produce(tc.msg); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}
