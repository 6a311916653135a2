package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// jsonSchemaURL is the base URL the schema is compiled under. It shows in
// validation errors ("... does not validate with memphis://schema#/required"),
// and a relative file name would put the process's working directory there.
const jsonSchemaURL = "memphis://schema"

// compileJSONSchema compiles a JSON Schema with the library and defaults
// the broker uses (draft 2020-12 unless $schema says otherwise). The broker
// would also follow $ref to local files; here external references fail, so
// that schema content cannot make the process read its file system.
func compileJSONSchema(content string) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.LoadURL = func(url string) (io.ReadCloser, error) {
		return nil, fmt.Errorf("loading %s: external references are not supported", url)
	}
	if err := c.AddResource(jsonSchemaURL, strings.NewReader(content)); err != nil {
		return nil, err
	}
	return c.Compile(jsonSchemaURL)
}

// jsonValidator checks JSON documents against a JSON Schema.
type jsonValidator struct {
	sch *jsonschema.Schema
}

func newJSONValidator(content string) (*jsonValidator, error) {
	sch, err := compileJSONSchema(content)
	if err != nil {
		return nil, err
	}
	return &jsonValidator{sch: sch}, nil
}

// Validate accepts JSON text ([]byte, json.RawMessage or string, published
// as given) or any other value json.Marshal can encode (a map, a struct with
// json tags, a slice, a number...), published as json.Marshal renders it.
// A string is taken as JSON text, like []byte, rather than as a JSON string
// value, so that both raw forms mean the same.
func (v *jsonValidator) Validate(msg any) ([]byte, error) {
	var data []byte
	switch m := msg.(type) {
	case nil:
		return nil, errUnsupported(msg, JSON, "JSON text or a JSON-encodable value")
	case []byte:
		data = m
	case json.RawMessage:
		data = m
	case string:
		data = []byte(m)
	default:
		b, err := json.Marshal(m)
		if err != nil {
			var ute *json.UnsupportedTypeError
			if errors.As(err, &ute) {
				return nil, fmt.Errorf("%w: %w", ErrUnsupportedMessage, err)
			}
			return nil, fmt.Errorf("message is not JSON-encodable: %w", err)
		}
		data = b
	}
	doc, err := decodeJSON(data)
	if err != nil {
		return nil, err
	}
	if err := v.sch.Validate(doc); err != nil {
		return nil, err
	}
	return data, nil
}

// Decode parses and validates a JSON document and returns it as
// encoding/json decodes into an any: objects as map[string]any, arrays as
// []any, numbers as float64 (a number too large for a float64 stays a
// json.Number).
func (v *jsonValidator) Decode(data []byte) (any, error) {
	doc, err := decodeJSON(data)
	if err != nil {
		return nil, err
	}
	if err := v.sch.Validate(doc); err != nil {
		return nil, err
	}
	return plainNumbers(doc), nil
}

// decodeJSON parses exactly one JSON value. Numbers stay json.Number so
// validation sees them exactly (an int64 beyond 2^53, a long decimal).
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("invalid JSON: empty message")
		}
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: data after the top-level value")
	}
	return doc, nil
}

// plainNumbers turns the json.Number values of a freshly decoded document
// into float64 in place, the form users of encoding/json expect.
func plainNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			return f
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = plainNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = plainNumbers(e)
		}
	}
	return v
}
