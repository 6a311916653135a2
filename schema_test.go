package memphis_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bufbuild/protocompile"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
	"github.com/memphisdev/memphis.go/internal/wire"
)

// The Schemaverse suite: every schema type with every message form the
// README lists, valid and invalid; live enforce/detach; DataDeserialized;
// the dead-letter report of failed messages; CreateSchema's edge cases; and
// schema names in any case. It runs on the in-process broker and unchanged
// on a real one (MEMPHIS_HOST); schemas cannot be deleted through the SDK,
// so every schema gets a name unique to the run.

// schemaFiles are the testdata schemas, all describing one Person record
// with a string name and an int age.
var schemaFiles = map[string]string{
	memphis.SchemaTypeProtobuf: "testdata/schemas/person.proto",
	memphis.SchemaTypeJSON:     "testdata/schemas/person.json",
	memphis.SchemaTypeGraphQL:  "testdata/schemas/person.graphql",
	memphis.SchemaTypeAvro:     "testdata/schemas/person.avsc",
}

var schemaTypes = []string{memphis.SchemaTypeProtobuf, memphis.SchemaTypeJSON, memphis.SchemaTypeGraphQL, memphis.SchemaTypeAvro}

// createSchema creates a schema of typ from its testdata file under a name
// unique to the run, and returns the name.
func createSchema(t testing.TB, c *memphis.Conn, typ string) string {
	t.Helper()
	name := testenv.Name(t, "sch-"+typ)
	if err := c.CreateSchema(name, typ, schemaFiles[typ]); err != nil {
		t.Fatalf("create %s schema %s: %v", typ, name, err)
	}
	return name
}

// schemaStation creates a station (destroyed when the test ends) with opts.
func schemaStation(t testing.TB, c *memphis.Conn, prefix string, opts ...memphis.StationOpt) string {
	t.Helper()
	name := testenv.Name(t, prefix)
	st, err := c.CreateStation(name, opts...)
	if err != nil {
		t.Fatalf("create station %s: %v", name, err)
	}
	t.Cleanup(func() { _ = st.Destroy() })
	return name
}

// compileProto compiles a .proto file of testdata/schemas, or inline
// content when content is not empty, and returns its message named msg.
func compileProto(t testing.TB, file, content, msg string) protoreflect.MessageDescriptor {
	t.Helper()
	resolver := &protocompile.SourceResolver{ImportPaths: []string{"testdata/schemas"}}
	if content != "" {
		resolver = &protocompile.SourceResolver{Accessor: protocompile.SourceAccessorFromMap(map[string]string{file: content})}
	}
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(resolver)}
	files, err := c.Compile(context.Background(), file)
	if err != nil {
		t.Fatalf("compile %s: %v", file, err)
	}
	md := files[0].Messages().ByName(protoreflect.Name(msg))
	if md == nil {
		t.Fatalf("%s declares no message %s", file, msg)
	}
	return md
}

// dynMessage builds a message of md (as generated code would hold it) from
// field values.
func dynMessage(md protoreflect.MessageDescriptor, fields map[string]any) *dynamicpb.Message {
	m := dynamicpb.NewMessage(md)
	for k, v := range fields {
		m.Set(md.Fields().ByName(protoreflect.Name(k)), protoreflect.ValueOf(v))
	}
	return m
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsonPerson has json tags (the JSON schema's struct form).
type jsonPerson struct {
	Name string `json:"name"`
	Age  int    `json:"age"`
}

// avroPerson has avro tags (the Avro schema's struct form).
type avroPerson struct {
	Name string `avro:"name"`
	Age  int    `avro:"age"`
}

// formCase is one message produced to a station enforcing a schema.
type formCase struct {
	name string
	msg  any
	// err is nil for a valid message, else ErrSchemaValidation or
	// ErrInvalidMessage.
	err error
	// reason, when set, is a part of the validator's reason.
	reason string
	// deser is what DataDeserialized gives back for a valid message.
	deser any
	// raw, when set, are the exact bytes stored for a valid message.
	raw []byte
}

type formSuite struct {
	valid     []formCase
	invalid   []formCase
	sentinel  any // a valid message, produced last
	sentinelD any // its DataDeserialized
}

func formsFor(t *testing.T, typ string) formSuite {
	ok := func(name string, msg, deser any) formCase { return formCase{name: name, msg: msg, deser: deser} }
	okRaw := func(name string, msg []byte, deser any) formCase {
		return formCase{name: name, msg: msg, deser: deser, raw: msg}
	}
	bad := func(name string, msg any, reason string) formCase {
		return formCase{name: name, msg: msg, err: memphis.ErrSchemaValidation, reason: reason}
	}
	unsupported := func(name string, msg any) formCase {
		return formCase{name: name, msg: msg, err: memphis.ErrInvalidMessage}
	}
	person := func(name string, age float64) map[string]any { return map[string]any{"name": name, "age": age} }
	switch typ {
	case memphis.SchemaTypeProtobuf:
		md := compileProto(t, "person.proto", "", "Person")
		other := compileProto(t, "other.proto", `syntax = "proto3"; message Other { string name = 1; double score = 9; }`, "Other")
		wireBytes := mustMarshal(t, dynMessage(md, map[string]any{"name": "Bob", "age": int32(7)}))
		return formSuite{
			valid: []formCase{
				ok("dynamicpb message", dynMessage(md, map[string]any{"name": "Ada", "age": int32(36)}), person("Ada", 36)),
				// A generated type whose wire form is a Person: field 1, a string.
				ok("generated message", wrapperspb.String("Gen"), map[string]any{"name": "Gen"}),
				okRaw("wire-format []byte", wireBytes, person("Bob", 7)),
				ok("map", map[string]any{"name": "Cy", "age": 40}, person("Cy", 40)),
			},
			invalid: []formCase{
				bad("dynamicpb message of another type", dynMessage(other, map[string]any{"name": "x", "score": 2.5}), "has no field 9"),
				// Field 1 with a fixed64 wire type, where Person has a string.
				bad("generated message of another type", wrapperspb.Double(2.5), "has no field 1 (fixed64)"),
				bad("[]byte that is not protobuf", []byte("\x00 not protobuf {"), "invalid message format"),
				bad("map with a wrong field type", map[string]any{"name": 36}, "name"),
				bad("map with an unknown field", map[string]any{"name": "x", "height": 180}, "height"),
				unsupported("string", "Ada"),
				unsupported("int", 42),
				unsupported("struct", jsonPerson{Name: "Ada"}),
			},
			sentinel:  map[string]any{"name": "end"},
			sentinelD: map[string]any{"name": "end"},
		}
	case memphis.SchemaTypeJSON:
		return formSuite{
			valid: []formCase{
				okRaw("[]byte", []byte(`{"name":"Ada","age":36}`), person("Ada", 36)),
				ok("map", map[string]any{"name": "Bob"}, map[string]any{"name": "Bob"}),
				ok("struct with json tags", jsonPerson{Name: "Cy", Age: 40}, person("Cy", 40)),
				ok("pointer to struct", &jsonPerson{Name: "Di", Age: 1}, person("Di", 1)),
				ok("string (JSON text)", `{"name":"Ed"}`, map[string]any{"name": "Ed"}),
			},
			invalid: []formCase{
				bad("[]byte missing a required field", []byte(`{"age":3}`), "name"),
				bad("[]byte that is not JSON", []byte(`{oops`), "invalid JSON"),
				bad("map with a wrong field type", map[string]any{"name": 5}, ""),
				bad("struct below the minimum", jsonPerson{Name: "Ada", Age: -3}, ""),
				unsupported("channel", make(chan int)),
				unsupported("func", func() {}),
				unsupported("nil", nil),
			},
			sentinel:  []byte(`{"name":"end"}`),
			sentinelD: map[string]any{"name": "end"},
		}
	case memphis.SchemaTypeGraphQL:
		q1 := `{ person(name: "Ada") { name age } }`
		q2 := `query Q { person(name: "Bob") { name } }`
		return formSuite{
			valid: []formCase{
				ok("string", q1, q1),
				okRaw("[]byte", []byte(q2), q2),
			},
			invalid: []formCase{
				bad("string querying an unknown field", `{ person(name: "x") { height } }`, "height"),
				bad("[]byte with a syntax error", []byte(`{ person(name: "x") { name `), ""),
				unsupported("map", map[string]any{"query": q1}),
				unsupported("int", 42),
			},
			sentinel:  `{ person(name: "end") { name } }`,
			sentinelD: `{ person(name: "end") { name } }`,
		}
	case memphis.SchemaTypeAvro:
		return formSuite{
			valid: []formCase{
				okRaw("[]byte (JSON)", []byte(`{"name":"Ada","age":36}`), person("Ada", 36)),
				ok("map", map[string]any{"name": "Bob", "age": 7}, person("Bob", 7)),
				ok("struct with avro tags", avroPerson{Name: "Cy", Age: 40}, person("Cy", 40)),
				ok("pointer to struct", &avroPerson{Name: "Di", Age: 1}, person("Di", 1)),
			},
			invalid: []formCase{
				bad("[]byte missing a field", []byte(`{"name":"Ada"}`), "age"),
				bad("[]byte that is not JSON", []byte(`not json`), "invalid JSON"),
				bad("map with a wrong field type", map[string]any{"name": "Bob", "age": "old"}, "age"),
				bad("struct missing a field", struct {
					Name string `avro:"name"`
				}{Name: "Cy"}, "age"),
				unsupported("int", 42),
				unsupported("slice", []string{"a"}),
			},
			sentinel:  map[string]any{"name": "end", "age": 0},
			sentinelD: person("end", 0),
		}
	}
	t.Fatalf("no forms for %s", typ)
	return formSuite{}
}

// checkProduceErr checks an error from producing an invalid message.
func checkProduceErr(t *testing.T, err error, fc formCase, typ, schemaName string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: produced, want %v", fc.name, fc.err)
		return
	}
	if !errors.Is(err, fc.err) {
		t.Errorf("%s: %v, want %v", fc.name, err, fc.err)
		return
	}
	var se *memphis.SchemaError
	if fc.err == memphis.ErrInvalidMessage {
		if errors.Is(err, memphis.ErrSchemaValidation) || errors.As(err, &se) {
			t.Errorf("%s: an unsupported type must not read as a validation failure: %v", fc.name, err)
		}
		return
	}
	if errors.Is(err, memphis.ErrInvalidMessage) {
		t.Errorf("%s: a validation failure must not read as an unsupported type: %v", fc.name, err)
	}
	if !errors.As(err, &se) {
		t.Errorf("%s: %v is not a *SchemaError", fc.name, err)
		return
	}
	if se.SchemaType != typ || se.Schema != schemaName || se.Err == nil || se.Err.Error() == "" {
		t.Errorf("%s: SchemaError{%q, %q, %v}, want type %s, schema %s and a reason", fc.name, se.Schema, se.SchemaType, se.Err, typ, schemaName)
		return
	}
	if !strings.Contains(err.Error(), se.Err.Error()) {
		t.Errorf("%s: %q does not carry the reason %q", fc.name, err, se.Err)
	}
	if fc.reason != "" && !strings.Contains(se.Err.Error(), fc.reason) {
		t.Errorf("%s: reason %q does not mention %q", fc.name, se.Err, fc.reason)
	}
}

func TestSchemaProduceForms(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	for _, typ := range schemaTypes {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			forms := formsFor(t, typ)
			name := createSchema(t, c, typ)
			station := schemaStation(t, c, "forms-"+typ, memphis.SchemaName(name), memphis.SendSchemaFailedMsgToDls(false))
			p, err := c.CreateProducer(station, "p")
			if err != nil {
				t.Fatal(err)
			}
			cons, err := c.CreateConsumer(station, "c", memphis.BatchMaxWaitTime(200*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			// Valid and invalid messages alternate, so one published by
			// mistake would show up out of place among the stored ones.
			var stored []formCase
			for i := 0; i < max(len(forms.valid), len(forms.invalid)); i++ {
				if i < len(forms.valid) {
					fc := forms.valid[i]
					if err := p.Produce(fc.msg); err != nil {
						t.Errorf("%s: %v", fc.name, err)
					} else {
						stored = append(stored, fc)
					}
				}
				if i < len(forms.invalid) {
					fc := forms.invalid[i]
					checkProduceErr(t, p.Produce(fc.msg), fc, typ, name)
					// An async produce is refused on the spot too.
					checkProduceErr(t, p.Produce(fc.msg, memphis.AsyncProduce()), fc, typ, name)
					// So is one through the connection's cached producer.
					checkProduceErr(t, c.Produce(station, "p2", fc.msg, nil, nil), fc, typ, name)
				}
			}
			if err := p.Produce(forms.sentinel); err != nil {
				t.Fatalf("sentinel: %v", err)
			}
			stored = append(stored, formCase{name: "sentinel", deser: forms.sentinelD})
			got := fetchAll(t, cons, len(stored), 10*time.Second)
			for i, m := range got {
				fc := stored[i]
				if fc.raw != nil && string(m.Data()) != string(fc.raw) {
					t.Errorf("%s: stored %q, want it as produced, %q", fc.name, m.Data(), fc.raw)
				}
				d, err := m.DataDeserialized()
				if err != nil {
					t.Errorf("%s: DataDeserialized: %v", fc.name, err)
				}
				if !reflect.DeepEqual(d, fc.deser) {
					t.Errorf("%s: DataDeserialized = %#v, want %#v", fc.name, d, fc.deser)
				}
			}
			// Nothing after the sentinel: the invalid messages were not
			// published (the sentinel came last, so everything before it
			// is in by now).
			more, err := cons.Fetch(10, false)
			if err != nil || len(more) != 0 {
				t.Errorf("after the sentinel: %d more messages, %v", len(more), err)
			}
		})
	}
}

// awaitProduceResult produces msg until the result is what want says (nil:
// success; else the error it must match) or d passes, and returns how many
// produces succeeded before, i.e. how many messages it stored on the way.
func awaitProduceResult(t *testing.T, p *memphis.Producer, msg any, want error, since time.Time, d time.Duration) (storedOnTheWay int) {
	t.Helper()
	for {
		err := p.Produce(msg)
		switch {
		case want == nil && err == nil:
			return storedOnTheWay
		case want != nil && errors.Is(err, want):
			return storedOnTheWay
		case err == nil:
			storedOnTheWay++
		case want == nil && !errors.Is(err, memphis.ErrSchemaValidation):
			t.Fatalf("produce: %v", err)
		case want != nil:
			t.Fatalf("produce: %v, want nil or %v", err, want)
		}
		if time.Since(since) > d {
			t.Fatalf("produce still gives %v %v after the schema changed, want %v", err, time.Since(since), want)
		}
		time.Sleep(2 * time.Millisecond) // poll interval
	}
}

// awaitDeserialized calls DataDeserialized until it gives want or d passes.
func awaitDeserialized(t *testing.T, m *memphis.Msg, want any, since time.Time, d time.Duration) {
	t.Helper()
	for {
		got, err := m.DataDeserialized()
		if err != nil {
			t.Fatalf("DataDeserialized: %v", err)
		}
		if reflect.DeepEqual(got, want) {
			return
		}
		if time.Since(since) > d {
			t.Fatalf("DataDeserialized = %#v %v after the schema changed, want %#v", got, time.Since(since), want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestSchemaLiveEnforceDetach(t *testing.T) {
	b := testenv.Start(t)
	pc := connect(t, b)
	cc := connect(t, b) // the consumer follows the schema on its own connection
	name := createSchema(t, pc, memphis.SchemaTypeJSON)
	station := schemaStation(t, pc, "live")
	p, err := pc.CreateProducer(station, "p")
	if err != nil {
		t.Fatal(err)
	}
	cons, err := cc.CreateConsumer(station, "c", memphis.BatchMaxWaitTime(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	if err := cons.Consume(col.handler); err != nil {
		t.Fatal(err)
	}
	defer cons.StopConsume()

	invalid := []byte("not json")
	valid := []byte(`{"name":"Ada"}`)
	for _, m := range [][]byte{invalid, valid} {
		if err := p.Produce(m); err != nil {
			t.Fatalf("no schema yet: %v", err)
		}
	}
	stored := 2
	before := col.wait(t, 2, 10*time.Second)
	for i, m := range before {
		if d, err := m.DataDeserialized(); err != nil || !reflect.DeepEqual(d, m.Data()) {
			t.Errorf("message %d without a schema: DataDeserialized = %#v, %v, want the raw bytes", i, d, err)
		}
	}

	// Enforce, under another case: the broker looks names up lower-cased.
	start := time.Now()
	if err := pc.EnforceSchema(strings.ToUpper(name), station); err != nil {
		t.Fatal(err)
	}
	stored += awaitProduceResult(t, p, invalid, memphis.ErrSchemaValidation, start, time.Second)
	t.Logf("enforced: invalid produce refused %v after EnforceSchema was called", time.Since(start))
	awaitDeserialized(t, before[1], map[string]any{"name": "Ada"}, start, time.Second)
	// The message produced before the schema does not parse: raw bytes.
	if d, err := before[0].DataDeserialized(); err != nil || !reflect.DeepEqual(d, invalid) {
		t.Errorf("pre-schema message: DataDeserialized = %#v, %v, want its raw bytes", d, err)
	}
	if err := p.Produce(valid); err != nil {
		t.Fatalf("valid message under the schema: %v", err)
	}
	stored++
	got := col.wait(t, stored, 10*time.Second)
	if d, err := got[stored-1].DataDeserialized(); err != nil || !reflect.DeepEqual(d, map[string]any{"name": "Ada"}) {
		t.Errorf("message under the schema: DataDeserialized = %#v, %v", d, err)
	}

	start = time.Now()
	if err := pc.DetachSchema(station); err != nil {
		t.Fatal(err)
	}
	if n := awaitProduceResult(t, p, invalid, nil, start, time.Second); n != 0 {
		t.Fatalf("awaiting success counted %d successes", n)
	}
	stored++
	t.Logf("detached: invalid produce accepted %v after DetachSchema was called", time.Since(start))
	awaitDeserialized(t, got[stored-2], valid, start, time.Second)

	// Only what was accepted is there: the sentinel comes right after.
	if err := p.Produce([]byte("sentinel")); err != nil {
		t.Fatal(err)
	}
	stored++
	got = col.wait(t, stored, 10*time.Second)
	if len(got) != stored || string(got[stored-1].Data()) != "sentinel" || string(got[stored-2].Data()) != string(invalid) {
		t.Errorf("consumed %d messages ending %q, want %d ending with the accepted invalid one and the sentinel", len(got), got[len(got)-1].Data(), stored)
	}
}

func TestSchemaDataDeserialized(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	garbage := []byte("\x00 not a message {")

	t.Run("no schema", func(t *testing.T) {
		station := schemaStation(t, c, "deser-none")
		p, err := c.CreateProducer(station, "p")
		if err != nil {
			t.Fatal(err)
		}
		cons, err := c.CreateConsumer(station, "c", memphis.BatchMaxWaitTime(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Produce(garbage); err != nil {
			t.Fatal(err)
		}
		if err := p.Produce("text"); err != nil {
			t.Fatal(err)
		}
		// A map or a struct goes as JSON, as in 1.x.
		if err := p.Produce(map[string]any{"a": 1}); err != nil {
			t.Errorf("a map without a schema: %v", err)
		}
		if err := p.Produce(struct {
			B int `json:"b"`
		}{2}); err != nil {
			t.Errorf("a struct without a schema: %v", err)
		}
		pb := wrapperspb.String("hi") // a protobuf message goes in its wire format
		if err := p.Produce(pb); err != nil {
			t.Errorf("a proto.Message without a schema: %v", err)
		}
		pbWire, _ := proto.Marshal(pb)
		for _, bad := range []any{42, []string{"x"}, &struct{}{}, nil} {
			if err := p.Produce(bad); !errors.Is(err, memphis.ErrInvalidMessage) {
				t.Errorf("%T without a schema: %v, want ErrInvalidMessage", bad, err)
			}
		}
		got := fetchAll(t, cons, 5, 10*time.Second)
		for i, want := range [][]byte{garbage, []byte("text"), []byte(`{"a":1}`), []byte(`{"b":2}`), pbWire} {
			d, err := got[i].DataDeserialized()
			if err != nil || !reflect.DeepEqual(d, want) {
				t.Errorf("message %d: DataDeserialized = %#v, %v, want %q as []byte", i, d, err, want)
			}
		}
	})

	for _, typ := range schemaTypes {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			forms := formsFor(t, typ)
			name := createSchema(t, c, typ)
			station := schemaStation(t, c, "deser-"+typ)
			p, err := c.CreateProducer(station, "p")
			if err != nil {
				t.Fatal(err)
			}
			cons, err := c.CreateConsumer(station, "c", memphis.BatchMaxWaitTime(200*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Produce(garbage); err != nil {
				t.Fatal(err)
			}
			old := fetchAll(t, cons, 1, 10*time.Second)[0]
			if d, err := old.DataDeserialized(); err != nil || !reflect.DeepEqual(d, garbage) {
				t.Errorf("before the schema: DataDeserialized = %#v, %v, want the raw bytes", d, err)
			}
			start := time.Now()
			if err := c.EnforceSchema(name, station); err != nil {
				t.Fatal(err)
			}
			if n := awaitProduceResult(t, p, garbage, memphis.ErrSchemaValidation, start, time.Second); n > 0 {
				_ = fetchAll(t, cons, n, 10*time.Second) // stored before the update arrived
			}
			for _, fc := range forms.valid {
				if err := p.Produce(fc.msg); err != nil {
					t.Fatalf("%s: %v", fc.name, err)
				}
			}
			got := fetchAll(t, cons, len(forms.valid), 10*time.Second)
			for i, fc := range forms.valid {
				d, err := got[i].DataDeserialized()
				if err != nil || !reflect.DeepEqual(d, fc.deser) {
					t.Errorf("%s: DataDeserialized = %#v (%T), %v, want %#v", fc.name, d, d, err, fc.deser)
				}
			}
			// Produced before the schema, it does not parse: raw bytes, no error.
			if d, err := old.DataDeserialized(); err != nil || !reflect.DeepEqual(d, garbage) {
				t.Errorf("pre-schema message under the schema: DataDeserialized = %#v, %v, want the raw bytes", d, err)
			}
		})
	}
}

// reportTap collects the schema-failure reports the SDK sends the broker.
type reportTap struct {
	mu      sync.Mutex
	reports []wire.SchemaverseDLSMsg
	news    chan struct{}
}

func tapReports(t *testing.T, b *testenv.Broker) *reportTap {
	tap := &reportTap{news: make(chan struct{}, 1)}
	nc := b.NATS(t)
	_, err := nc.Subscribe(wire.SubjSchemaverseDLS, func(m *nats.Msg) {
		var r wire.SchemaverseDLSMsg
		if err := json.Unmarshal(m.Data, &r); err != nil {
			return
		}
		tap.mu.Lock()
		tap.reports = append(tap.reports, r)
		tap.mu.Unlock()
		select {
		case tap.news <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return tap
}

func (tap *reportTap) wait(t *testing.T, d time.Duration) []wire.SchemaverseDLSMsg {
	t.Helper()
	deadline := time.After(d)
	for {
		tap.mu.Lock()
		got := append([]wire.SchemaverseDLSMsg(nil), tap.reports...)
		tap.mu.Unlock()
		if len(got) > 0 {
			return got
		}
		select {
		case <-tap.news:
		case <-deadline:
			t.Fatalf("no schema-failure report in %v", d)
		}
	}
}

func TestSchemaDeadLetter(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	tap := tapReports(t, b)
	name := createSchema(t, c, memphis.SchemaTypeJSON)
	dls := testenv.Name(t, "dls")
	t.Cleanup(func() {
		if st, err := c.CreateStation(dls); err == nil {
			_ = st.Destroy()
		}
	})
	on := schemaStation(t, c, "dls-on", memphis.SchemaName(name), memphis.SendSchemaFailedMsgToDls(true), memphis.DlsStation(dls))
	off := schemaStation(t, c, "dls-off", memphis.SchemaName(name), memphis.SendSchemaFailedMsgToDls(false), memphis.DlsStation(dls))
	// The DLS station's reader exists before anything can arrive.
	fetchDLS := func(wait time.Duration) []*memphis.Msg {
		t.Helper()
		msgs, err := c.FetchMessages(dls, "reader", memphis.FetchBatchMaxWaitTime(wait))
		if err != nil {
			t.Fatalf("fetch from the DLS station: %v", err)
		}
		for _, m := range msgs {
			_ = m.Ack()
		}
		return msgs
	}
	if msgs := fetchDLS(100 * time.Millisecond); len(msgs) != 0 {
		t.Fatalf("a new DLS station holds %d messages", len(msgs))
	}
	pOff := mustProducer(t, c, off, "p-off")
	pOn := mustProducer(t, c, on, "p-on")
	var hOff, hOn memphis.Headers
	_ = hOff.Add("x", "from-off")
	_ = hOn.Add("x", "from-on")
	badOff := []byte(`{"age":-1,"from":"off"}`)
	badOn := []byte(`{"age":-1,"from":"on"}`)
	// Off first: reports from one connection arrive in order, so when the
	// one from "on" is seen, one from "off" would have been seen already.
	if err := pOff.Produce(badOff, memphis.MsgHeaders(hOff)); !errors.Is(err, memphis.ErrSchemaValidation) {
		t.Fatalf("invalid produce to %s: %v", off, err)
	}
	err := pOn.Produce(badOn, memphis.MsgHeaders(hOn))
	var se *memphis.SchemaError
	if !errors.As(err, &se) {
		t.Fatalf("invalid produce to %s: %v", on, err)
	}

	reports := tap.wait(t, 10*time.Second)
	if len(reports) != 1 {
		t.Fatalf("%d reports, want only the one from %s: %+v", len(reports), on, reports)
	}
	r := reports[0]
	if r.StationName != wire.InternalName(on) || r.Producer.Name != "p-on" || r.ValidationError != se.Err.Error() ||
		r.Message.Data != hex.EncodeToString(badOn) || r.Message.Headers["x"] != "from-on" || r.PartitionNumber != 1 {
		t.Errorf("report = %+v", r)
	}

	// The broker copies it to the DLS station, asynchronously.
	var got []*memphis.Msg
	start := time.Now()
	for len(got) == 0 && time.Since(start) < 20*time.Second {
		got = fetchDLS(500 * time.Millisecond)
	}
	if len(got) != 1 {
		t.Fatalf("DLS station: %d messages in %v, want 1", len(got), time.Since(start))
	}
	t.Logf("the failed message reached the DLS station %v after the produce", time.Since(start))
	m := got[0]
	h := m.GetHeaders()
	if string(m.Data()) != string(badOn) || h["type"] != "failed_schema" || h["station"] != on || h["x"] != "from-on" {
		t.Errorf("DLS message %q with headers %v, want %q with type=failed_schema station=%s x=from-on", m.Data(), h, badOn, on)
	}
	if h["validation_error"] != se.Err.Error() {
		t.Errorf("DLS message's validation_error header = %q, want the validator's reason %q", h["validation_error"], se.Err.Error())
	}
	if more := fetchDLS(300 * time.Millisecond); len(more) != 0 {
		t.Errorf("DLS station: %d more messages (%q), want none from %s", len(more), more[0].Data(), off)
	}
}

// TestSchemaFailedMessagesGoToTheDLSByDefault: "SendSchemaFailedMsgToDls
// ... (the default)": a station created without the option still has a
// message that failed its schema copied to its DlsStation.
func TestSchemaFailedMessagesGoToTheDLSByDefault(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	name := createSchema(t, c, memphis.SchemaTypeJSON)
	dls := schemaStation(t, c, "dls-default") // exists before anything can arrive
	station := schemaStation(t, c, "dls-default-src", memphis.SchemaName(name), memphis.DlsStation(dls))
	bad := []byte(`{"age":-1,"from":"default"}`)
	if err := mustProducer(t, c, station, "p").Produce(bad); !errors.Is(err, memphis.ErrSchemaValidation) {
		t.Fatalf("invalid produce to %s: %v", station, err)
	}
	// The broker copies it asynchronously.
	reader := mustConsumer(t, c, dls, "reader", memphis.BatchMaxWaitTime(500*time.Millisecond))
	m := fetchAll(t, reader, 1, 20*time.Second)[0]
	if h := m.GetHeaders(); string(m.Data()) != string(bad) || h["type"] != "failed_schema" || h["station"] != station {
		t.Errorf("DLS message %q with headers %v, want %q with type=failed_schema station=%s", m.Data(), h, bad, station)
	}
}

// tapCreations records schema creation requests reaching the broker.
func tapCreations(t *testing.T, b *testenv.Broker) (seen func(fence string) []string) {
	var mu sync.Mutex
	var reqs []string
	news := make(chan struct{}, 1)
	nc := b.NATS(t)
	if _, err := nc.Subscribe(wire.SubjSchemaCreations, func(m *nats.Msg) {
		mu.Lock()
		reqs = append(reqs, string(m.Data))
		mu.Unlock()
		select {
		case news <- struct{}{}:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// seen returns the requests before the one naming fence, which the
	// test sends after the calls under test on the same connection.
	return func(fence string) []string {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			mu.Lock()
			got := append([]string(nil), reqs...)
			mu.Unlock()
			for i, r := range got {
				if strings.Contains(r, `"`+fence+`"`) {
					return got[:i]
				}
			}
			select {
			case <-news:
			case <-deadline:
				t.Fatalf("the fence %s never reached the broker", fence)
			}
		}
	}
}

func TestCreateSchema(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	dir := t.TempDir()
	jsonFile := schemaFiles[memphis.SchemaTypeJSON]

	t.Run("refused locally", func(t *testing.T) {
		seen := tapCreations(t, b)
		name := testenv.Name(t, "sch-local")
		err := c.CreateSchema(name, memphis.SchemaTypeJSON, filepath.Join(dir, "missing.json"))
		if !errors.Is(err, memphis.ErrInvalidOption) || !strings.Contains(err.Error(), "missing.json") {
			t.Errorf("missing file: %v, want ErrInvalidOption naming the file", err)
		}
		for _, typ := range []string{"xml", "JSON", ""} {
			if err := c.CreateSchema(name, typ, jsonFile); !errors.Is(err, memphis.ErrInvalidOption) {
				t.Errorf("type %q: %v, want ErrInvalidOption", typ, err)
			}
		}
		upper := "Sch-Upper-" + name
		err = c.CreateSchema(upper, memphis.SchemaTypeJSON, jsonFile)
		if !errors.Is(err, memphis.ErrInvalidName) || !strings.Contains(err.Error(), strings.ToLower(upper)) ||
			!strings.Contains(err.Error(), "lower-cased") {
			t.Errorf("upper-case name: %v, want ErrInvalidName explaining the lower-case lookup", err)
		}
		for _, bad := range []string{"", "no spaces!", "-dash", strings.Repeat("x", 129)} {
			if err := c.CreateSchema(bad, memphis.SchemaTypeJSON, jsonFile); !errors.Is(err, memphis.ErrInvalidName) {
				t.Errorf("name %q: %v, want ErrInvalidName", bad, err)
			}
		}
		fence := testenv.Name(t, "sch-fence")
		if err := c.CreateSchema(fence, memphis.SchemaTypeJSON, jsonFile); err != nil {
			t.Fatal(err)
		}
		if sent := seen(fence); len(sent) != 0 {
			t.Errorf("refused calls sent %d requests: %q", len(sent), sent)
		}
	})

	t.Run("versions", func(t *testing.T) {
		name := createSchema(t, c, memphis.SchemaTypeJSON)
		if err := c.CreateSchema(name, memphis.SchemaTypeJSON, jsonFile); err != nil {
			t.Errorf("same content again: %v", err)
		}
		// A new version that also requires an email.
		v2 := filepath.Join(dir, "person-v2.json")
		content := `{"type":"object","properties":{"name":{"type":"string"},"email":{"type":"string"}},"required":["name","email"]}`
		if err := os.WriteFile(v2, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := c.CreateSchema(name, memphis.SchemaTypeJSON, v2); err != nil {
			t.Errorf("changed content: %v, want a new version", err)
		}
		if err := c.CreateSchema(name, memphis.SchemaTypeJSON, v2); err != nil {
			t.Errorf("the new version's content again: %v", err)
		}
		// A new version starts inactive, and only the broker's UI activates
		// one (docs/protocol.md#quirk-schema-activation-silent): the station
		// keeps enforcing version 1.
		station := schemaStation(t, c, "versions", memphis.SchemaName(name))
		p, err := c.CreateProducer(station, "p")
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Produce([]byte(`{"name":"Ada"}`)); err != nil {
			t.Errorf("valid under version 1: %v", err)
		}
		if err := p.Produce([]byte(`{"email":"a@b"}`)); !errors.Is(err, memphis.ErrSchemaValidation) {
			t.Errorf("invalid under version 1: %v", err)
		}
	})

	t.Run("refused by the broker", func(t *testing.T) {
		name := createSchema(t, c, memphis.SchemaTypeJSON)
		if err := c.CreateSchema(name, memphis.SchemaTypeAvro, schemaFiles[memphis.SchemaTypeAvro]); !errors.Is(err, memphis.ErrInvalidSchema) {
			t.Errorf("same name, other type: %v, want ErrInvalidSchema", err)
		}
		bad := filepath.Join(dir, "bad.json")
		if err := os.WriteFile(bad, []byte(`{"type": 12`), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := c.CreateSchema(testenv.Name(t, "sch-bad"), memphis.SchemaTypeJSON, bad); !errors.Is(err, memphis.ErrInvalidSchema) {
			t.Errorf("invalid content: %v, want ErrInvalidSchema", err)
		}
		empty := filepath.Join(dir, "empty.json")
		if err := os.WriteFile(empty, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := c.CreateSchema(testenv.Name(t, "sch-empty"), memphis.SchemaTypeJSON, empty); !errors.Is(err, memphis.ErrInvalidSchema) {
			t.Errorf("empty content: %v, want ErrInvalidSchema", err)
		}
	})
}

// TestSchemaNameCase: the README's memphis.SchemaName("SensorLogs") and
// EnforceSchema("<schema-name>", ...) find a schema whatever the case, as
// the broker lower-cases schema names when it looks them up.
func TestSchemaNameCase(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	name := createSchema(t, c, memphis.SchemaTypeJSON)
	mixed := strings.ToUpper(name[:1]) + name[1:]
	upper := strings.ToUpper(name)
	enforced := func(station string) {
		t.Helper()
		p, err := c.CreateProducer(station, "p")
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Produce([]byte(`{"age":1}`)); !errors.Is(err, memphis.ErrSchemaValidation) {
			t.Errorf("%s does not enforce %s: %v", station, name, err)
		}
		var se *memphis.SchemaError
		if errors.As(err, &se) && se.Schema != name {
			t.Errorf("SchemaError names %q, want %q", se.Schema, name)
		}
		if err := p.Produce([]byte(`{"name":"Ada"}`)); err != nil {
			t.Errorf("valid message to %s: %v", station, err)
		}
	}

	enforced(schemaStation(t, c, "case-create", memphis.SchemaName(mixed)))
	st := schemaStation(t, c, "case-enforce")
	if err := c.EnforceSchema(upper, st); err != nil {
		t.Fatalf("EnforceSchema(%q): %v", upper, err)
	}
	enforced(st)
	st = schemaStation(t, c, "case-attach")
	if err := c.AttachSchema(mixed, st); err != nil {
		t.Fatalf("AttachSchema(%q): %v", mixed, err)
	}
	enforced(st)

	missing := "No-Such-" + upper
	if err := c.EnforceSchema(missing, st); !errors.Is(err, memphis.ErrSchemaNotFound) ||
		!strings.Contains(err.Error(), strings.ToLower(missing)) {
		t.Errorf("EnforceSchema(%q): %v, want ErrSchemaNotFound naming it lower-cased", missing, err)
	}
	// The broker answers a station creation naming a missing schema with
	// success and creates nothing
	// (docs/protocol.md#quirk-station-create-silent-noop); the SDK tells.
	if _, err := c.CreateStation(testenv.Name(t, "case-missing"), memphis.SchemaName(missing)); !errors.Is(err, memphis.ErrSchemaNotFound) {
		t.Errorf("CreateStation with SchemaName(%q): %v, want ErrSchemaNotFound", missing, err)
	}
	for _, bad := range []string{"Bad Name!", "-Dash", strings.Repeat("X", 129)} {
		if _, err := c.CreateStation(testenv.Name(t, "case-bad"), memphis.SchemaName(bad)); !errors.Is(err, memphis.ErrInvalidName) {
			t.Errorf("SchemaName(%q): %v, want ErrInvalidName", bad, err)
		}
		if err := c.EnforceSchema(bad, st); !errors.Is(err, memphis.ErrInvalidName) {
			t.Errorf("EnforceSchema(%q): %v, want ErrInvalidName", bad, err)
		}
	}
}

// Example-style check that the error a caller prints reads well.
func TestSchemaErrorText(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	name := createSchema(t, c, memphis.SchemaTypeJSON)
	station := schemaStation(t, c, "errtext", memphis.SchemaName(name), memphis.SendSchemaFailedMsgToDls(false))
	p := mustProducer(t, c, station, "p")
	err := p.Produce([]byte(`{"age":1}`))
	want := fmt.Sprintf("memphis: produce %s: schema validation failed against json schema %s: ", station, name)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error text %q, want it to start %q", err, want)
	}
}
