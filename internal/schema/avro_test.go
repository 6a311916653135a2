package schema

import (
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
)

const avroAllContent = `{"type":"record","name":"All","namespace":"t","fields":[
 {"name":"b","type":"boolean"},
 {"name":"i","type":"int"},
 {"name":"l","type":"long"},
 {"name":"f","type":"float"},
 {"name":"d","type":"double"},
 {"name":"s","type":"string"},
 {"name":"by","type":"bytes"},
 {"name":"fx","type":{"type":"fixed","name":"F4","size":4}},
 {"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}},
 {"name":"a","type":{"type":"array","items":"int"}},
 {"name":"m","type":{"type":"map","values":"long"}},
 {"name":"u","type":["null","int","string",{"type":"record","name":"Sub","fields":[{"name":"x","type":"int"}]}]},
 {"name":"r","type":"Sub"},
 {"name":"date","type":{"type":"int","logicalType":"date"}},
 {"name":"tsm","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"tsu","type":{"type":"long","logicalType":"timestamp-micros"}},
 {"name":"ltsm","type":{"type":"long","logicalType":"local-timestamp-millis"}},
 {"name":"tm","type":{"type":"int","logicalType":"time-millis"}},
 {"name":"tu","type":{"type":"long","logicalType":"time-micros"}},
 {"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":6,"scale":2}},
 {"name":"uuid","type":{"type":"string","logicalType":"uuid"}},
 {"name":"dur","type":{"type":"fixed","name":"Dur","size":12,"logicalType":"duration"}}
]}`

const avroAllDoc = `{"b":true,"i":-5,"l":9007199254740993,"f":1.5,"d":2.25,"s":"x","by":"\u0000\u00ff","fx":"abcd",
"e":"RED","a":[1,2],"m":{"k":3},"u":{"x":1},"r":{"x":2},"date":19000,"tsm":1700000000000,"tsu":1700000000000001,
"ltsm":1700000000000,"tm":1000,"tu":1000001,"dec":3.14,"uuid":"123e4567-e89b-12d3-a456-426614174000",
"dur":"\u0001\u0000\u0000\u0000\u0002\u0000\u0000\u0000\u0003\u0000\u0000\u0000"}`

type avroSub struct {
	X int `avro:"x"`
}

type avroAll struct {
	B    bool                 `avro:"b"`
	I    int                  `avro:"i"`
	L    int64                `avro:"l"`
	F    float32              `avro:"f"`
	D    float64              `avro:"d"`
	S    string               `avro:"s"`
	By   []byte               `avro:"by"`
	Fx   [4]byte              `avro:"fx"`
	E    string               `avro:"e"`
	A    []int                `avro:"a"`
	M    map[string]int64     `avro:"m"`
	U    any                  `avro:"u"`
	R    avroSub              `avro:"r"`
	Date time.Time            `avro:"date"`
	Tsm  time.Time            `avro:"tsm"`
	Tsu  time.Time            `avro:"tsu"`
	Ltsm time.Time            `avro:"ltsm"`
	Tm   time.Duration        `avro:"tm"`
	Tu   time.Duration        `avro:"tu"`
	Dec  *big.Rat             `avro:"dec"`
	UUID string               `avro:"uuid"`
	Dur  avro.LogicalDuration `avro:"dur"`
}

func TestAvroAllTypes(t *testing.T) {
	v := newValidator(t, Avro, avroAllContent)
	out, err := v.Validate([]byte(avroAllDoc))
	if err != nil {
		t.Fatalf("JSON document: %v", err)
	}
	if string(out) != avroAllDoc {
		t.Error("JSON text not published as given")
	}
	// The long keeps its exact value (2^53+1) on its way to the encoder.
	doc, _ := decodeJSON([]byte(avroAllDoc))
	native, err := jsonToAvro(v.(*avroValidator).sch, doc)
	if err != nil {
		t.Fatal(err)
	}
	if l := native.(map[string]any)["l"]; l != int64(9007199254740993) {
		t.Errorf("long = %#v", l)
	}

	// A struct publishes the same document the JSON form describes.
	s := avroAll{
		B: true, I: -5, L: 9007199254740993, F: 1.5, D: 2.25, S: "x", By: []byte{0, 0xff}, Fx: [4]byte{'a', 'b', 'c', 'd'},
		E: "RED", A: []int{1, 2}, M: map[string]int64{"k": 3}, U: nil, R: avroSub{X: 2},
		Date: time.Unix(19000*86400, 0).UTC(), Tsm: time.UnixMilli(1700000000000).UTC(),
		Tsu: time.UnixMicro(1700000000000001).UTC(), Ltsm: time.UnixMilli(1700000000000).UTC(),
		Tm: time.Second, Tu: 1000001 * time.Microsecond, Dec: big.NewRat(314, 100),
		UUID: "123e4567-e89b-12d3-a456-426614174000", Dur: avro.LogicalDuration{Months: 1, Days: 2, Milliseconds: 3},
	}
	out, err = v.Validate(s)
	if err != nil {
		t.Fatalf("struct: %v", err)
	}
	var got, want map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("struct published non-JSON %q: %v", out, err)
	}
	_ = json.Unmarshal([]byte(avroAllDoc), &want)
	want["u"] = nil
	for k, w := range want {
		if !jsonEqual(got[k], w) {
			t.Errorf("struct field %s published as %#v, want %#v", k, got[k], w)
		}
	}
	if _, err := v.Decode(out); err != nil {
		t.Errorf("Decode of the struct's document: %v", err)
	}
}

func TestAvroConversions(t *testing.T) {
	v := newValidator(t, Avro, avroAllContent)
	base := map[string]any{}
	if err := json.Unmarshal([]byte(avroAllDoc), &base); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		field string
		value string // JSON text
		ok    bool
	}{
		{"i", `1e3`, true},
		{"i", `30.0`, true},
		{"i", `-2147483648`, true},
		{"i", `2147483648`, false},
		{"i", `1.5`, false},
		{"i", `"1"`, false},
		{"i", `true`, false},
		{"l", `9223372036854775807`, true},
		{"l", `9223372036854775808`, false},
		{"l", `1e19`, false},
		{"f", `3.4e38`, true},
		{"f", `3.5e38`, false},
		{"f", `1`, true},
		{"d", `1e308`, true},
		{"d", `1e309`, false},
		{"d", `null`, false},
		{"by", `"abc"`, true},
		{"by", `"\u0100"`, false},
		{"by", `5`, false},
		{"fx", `"abc"`, false},
		{"fx", `"abcde"`, false},
		{"e", `"GREEN"`, true},
		{"e", `"BLUE"`, false},
		{"a", `[]`, true},
		{"a", `[1,"x"]`, false},
		{"a", `{}`, false},
		{"m", `{"a":1,"b":2}`, true},
		{"m", `{"a":"x"}`, false},
		{"m", `[]`, false},
		{"u", `null`, true},
		{"u", `1`, true},
		{"u", `"x"`, true},
		{"u", `{"x":1}`, true},
		{"u", `{"Sub":{"x":1}}`, true},
		{"u", `{"t.Sub":{"x":1}}`, true},
		{"u", `{"int":1}`, true},
		{"u", `{"null":null}`, true},
		{"u", `true`, false},
		{"u", `{"y":1}`, false},
		{"u", `1.5`, false},
		{"r", `{"x":1,"extra":true}`, true},
		{"r", `{}`, false},
		{"dec", `"3.14"`, true},
		{"dec", `1e2`, true},
		{"dec", `-0.5`, true},
		{"dec", `3.141`, false},
		{"dec", `12345.67`, false},
		{"dec", `"1/2"`, false},
		{"dec", `"1e999999999"`, false},
		{"dec", `"abc"`, false},
		{"dec", `true`, false},
		{"dur", `"abc"`, false},
		{"s", `1`, false},
		{"b", `"true"`, false},
	}
	for _, c := range cases {
		doc := make(map[string]any, len(base))
		for k, e := range base {
			doc[k] = e
		}
		doc[c.field] = json.RawMessage(c.value)
		data, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Validate(data)
		if c.ok && err != nil {
			t.Errorf("%s = %s: %v", c.field, c.value, err)
		}
		if !c.ok {
			if err == nil {
				t.Errorf("%s = %s accepted", c.field, c.value)
			} else if !strings.Contains(err.Error(), c.field) {
				t.Errorf("%s = %s: error does not name the field: %v", c.field, c.value, err)
			}
		}
	}
	delete(base, "s")
	data, _ := json.Marshal(base)
	if _, err := v.Validate(data); err == nil || !strings.Contains(err.Error(), `"s"`) {
		t.Errorf("missing field: %v", err)
	}
}

func TestAvroErrorPaths(t *testing.T) {
	v := newValidator(t, Avro, `{"type":"record","name":"R","fields":[
	  {"name":"items","type":{"type":"array","items":{"type":"record","name":"I","fields":[{"name":"price","type":"double"}]}}},
	  {"name":"opt","type":["null","int"],"default":null}]}`)
	cases := map[string]string{
		`{"items":[{"price":1},{"price":"x"}]}`: "items[1].price: expected avro double, got string",
		`{"items":[],"opt":"x"}`:                "opt: expected avro int, got string",
		`{"items":[],"opt":1.5}`:                "opt: expected avro int, got number 1.5 (not a whole number in range)",
	}
	for doc, want := range cases {
		_, err := v.Validate([]byte(doc))
		if err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %q", doc, err, want)
		}
	}
}

func TestAvroTopLevelNonRecord(t *testing.T) {
	v := newValidator(t, Avro, `["null","int",{"type":"array","items":"string"}]`)
	for _, doc := range []string{`null`, `5`, `["a"]`, `{"array":["a"]}`} {
		if _, err := v.Validate([]byte(doc)); err != nil {
			t.Errorf("%s: %v", doc, err)
		}
	}
	if _, err := v.Validate([]byte(`"a"`)); err == nil {
		t.Error(`"a" accepted by [null,int,array<string>]`)
	}
	d := newValidator(t, Avro, `"double"`)
	// The official SDK's README asked for double fields because JSON
	// numbers came as float64; whole numbers now fit either.
	if _, err := d.Validate([]byte(`30`)); err != nil {
		t.Errorf("30 for double: %v", err)
	}
}

func TestAvroUnsupportedStructValue(t *testing.T) {
	v := newValidator(t, Avro, avroContent)
	_, err := v.Validate(struct {
		Name chan int `avro:"name"`
	}{})
	if err == nil || errors.Is(err, ErrUnsupportedMessage) {
		t.Errorf("struct the encoder refuses: %v", err)
	}
}
