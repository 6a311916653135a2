package schema

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/hamba/avro/v2"
)

const avroAccepted = "JSON text ([]byte, json.RawMessage, string), a map[string]any or a struct with avro tags"

// parseAvroSchema parses an Avro schema with a cache of its own. avro.Parse
// shares one cache of named types across the process, so a reference to a
// type that this schema never defines could resolve to another schema's.
func parseAvroSchema(content string) (sch avro.Schema, err error) {
	defer recoverAs(&err, "avro: parsing the schema failed")
	return avro.ParseWithCache(content, "", &avro.SchemaCache{})
}

// avroValidator checks messages against an Avro schema. Messages travel as
// JSON documents, as with the official SDKs, not in Avro's binary encoding.
type avroValidator struct {
	sch avro.Schema
}

func newAvroValidator(content string) (*avroValidator, error) {
	sch, err := parseAvroSchema(content)
	if err != nil {
		return nil, err
	}
	return &avroValidator{sch: sch}, nil
}

// Validate accepts JSON text ([]byte, json.RawMessage or string, published
// as given), a map[string]any (published as json.Marshal renders it), or a
// struct or pointer to struct with avro tags (encoded by the avro library,
// then published as the equivalent JSON document).
//
// JSON values are read against the schema (see jsonToAvro): any whole JSON
// number fits an int or long field, so a message with "age": 30 matches
// {"name":"age","type":"int"}; the official Go SDK required double there.
func (v *avroValidator) Validate(msg any) ([]byte, error) {
	var data []byte
	switch m := msg.(type) {
	case nil:
		return nil, errUnsupported(msg, Avro, avroAccepted)
	case []byte:
		data = m
	case json.RawMessage:
		data = m
	case string:
		data = []byte(m)
	case map[string]any:
		b, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("message map is not JSON-encodable: %w", err)
		}
		data = b
	default:
		if !isStruct(msg) {
			return nil, errUnsupported(msg, Avro, avroAccepted)
		}
		return v.fromStruct(msg)
	}
	if _, err := v.check(data); err != nil {
		return nil, err
	}
	return data, nil
}

// Decode validates a JSON document against the schema and returns it as
// encoding/json decodes into an any (objects as map[string]any, numbers as
// float64).
func (v *avroValidator) Decode(data []byte) (any, error) {
	doc, err := v.check(data)
	if err != nil {
		return nil, err
	}
	return plainNumbers(doc), nil
}

// check parses JSON text and validates it against the schema, returning
// the parsed document.
func (v *avroValidator) check(data []byte) (any, error) {
	doc, err := decodeJSON(data)
	if err != nil {
		return nil, err
	}
	native, err := jsonToAvro(v.sch, doc)
	if err != nil {
		return nil, err
	}
	// jsonToAvro already checks what it converts; encoding is the avro
	// library's word on the result.
	if err := v.encodes(native); err != nil {
		return nil, err
	}
	return doc, nil
}

func (v *avroValidator) encodes(native any) (err error) {
	defer recoverAs(&err, "avro: encoding failed")
	_, err = avro.Marshal(v.sch, native)
	return err
}

// fromStruct validates a struct by encoding it with the avro library, then
// turns the encoded record back into the JSON document that is published,
// so that field names follow the avro tags, not the json ones.
func (v *avroValidator) fromStruct(msg any) (_ []byte, err error) {
	defer recoverAs(&err, "avro: encoding failed")
	bin, err := avro.Marshal(v.sch, msg)
	if err != nil {
		return nil, err
	}
	var generic any
	if err := avro.Unmarshal(v.sch, bin, &generic); err != nil {
		return nil, err
	}
	doc, err := avroToJSON(v.sch, generic)
	if err != nil {
		return nil, err
	}
	return json.Marshal(doc)
}

// isStruct reports a struct or a non-nil pointer to one: the Go values the
// avro library can encode as a record.
func isStruct(msg any) bool {
	rv := reflect.ValueOf(msg)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return false
		}
		rv = rv.Elem()
	}
	return rv.Kind() == reflect.Struct
}
