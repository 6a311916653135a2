// Package schema implements Schemaverse for both sides of the wire: the SDK
// validates and encodes produced messages and decodes consumed ones with a
// Validator built by New, and the in-process broker checks schema content
// (CheckContent) and compiles protobuf descriptors (CompileProto) the way
// the real broker does (docs/protocol.md#schemaverse).
//
// A Validator is compiled once per schema version and is then used by many
// goroutines, so validators hold only immutable state.
package schema

import (
	"errors"
	"fmt"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// Schema types, as spelled on the wire (the broker's enum_type).
const (
	Protobuf = "protobuf"
	JSON     = "json"
	GraphQL  = "graphql"
	Avro     = "avro"
)

var (
	// ErrUnsupportedMessage reports a Go value whose type the schema type
	// cannot take (say, an int for a GraphQL station). It tells the caller
	// the program is wrong, as opposed to a payload that does not match the
	// schema, which is reported as a plain error.
	ErrUnsupportedMessage = errors.New("message type not supported by the schema type")

	// ErrUnknownType reports a schema type other than the four above. The
	// broker answers such requests with a database error text of its own,
	// so CheckContent leaves the wording to its caller.
	ErrUnknownType = errors.New("unknown schema type")
)

// Validator validates and encodes produced messages for one compiled schema
// version and decodes consumed ones. It is safe for concurrent use.
type Validator interface {
	// Validate checks msg against the schema and returns the bytes to
	// publish. An error wrapping ErrUnsupportedMessage means msg's Go type
	// is not accepted by the schema type; any other error means msg does
	// not match the schema and carries the validator's reason.
	Validate(msg any) ([]byte, error)

	// Decode deserializes a consumed message. Data that does not parse or
	// does not match the schema (for instance a message produced before the
	// schema was enforced) is an error.
	Decode(data []byte) (any, error)
}

// New compiles the active version of the schema a station announced. An
// unknown type returns an error wrapping ErrUnknownType.
func New(su wire.SchemaUpdateInit) (Validator, error) {
	av := su.ActiveVersion
	switch su.SchemaType {
	case Protobuf:
		return newProtoValidator(su.SchemaName, av)
	case JSON:
		return newJSONValidator(av.SchemaContent)
	case GraphQL:
		return newGraphQLValidator(av.SchemaContent)
	case Avro:
		return newAvroValidator(av.SchemaContent)
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownType, su.SchemaType)
}

// contentError keeps the broker's exact reply text while still letting
// callers and tests reach the parser's own error.
type contentError struct {
	msg string
	err error
}

func (e *contentError) Error() string { return e.msg }
func (e *contentError) Unwrap() error { return e.err }

// CheckContent validates schema content of a type the way the real broker
// does when a schema is created (docs/protocol.md#schema-create), and
// returns an error whose text is the broker's reply text. Empty content is
// refused before the type is looked at, as the broker does; an unknown type
// then returns an error wrapping ErrUnknownType.
func CheckContent(typ, content string) error {
	if content == "" {
		return &contentError{msg: "your schema content is invalid"}
	}
	switch typ {
	case Protobuf:
		// The broker parses the content under an empty file name, which is
		// why its positions read ":1:28: ...".
		if _, err := compileProtoFile("", content); err != nil {
			return &contentError{msg: "your Proto file is invalid: " + err.Error(), err: err}
		}
	case JSON:
		if _, err := compileJSONSchema(content); err != nil {
			return &contentError{msg: "your json schema is invalid", err: err}
		}
	case GraphQL:
		if _, err := parseGraphQLSchema(content); err != nil {
			return err
		}
	case Avro:
		if _, err := parseAvroSchema(content); err != nil {
			return &contentError{msg: "your Avro file is invalid: " + err.Error(), err: err}
		}
	default:
		return fmt.Errorf("%w: %q", ErrUnknownType, typ)
	}
	return nil
}

// recoverAs turns a panic inside a third-party parser or codec into an
// error. Fuzzing found inputs that make some of them panic (a map entry
// whose key repeats with another wire type in protobuf's reflective
// decoder, an empty Avro union with a default), and schema content or
// message bytes from the network must never take the process down.
func recoverAs(err *error, what string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s: %v", what, r)
	}
}

// errUnsupported builds the error for a Go value the schema type cannot take.
func errUnsupported(msg any, schemaType, accepted string) error {
	return fmt.Errorf("%w: %T (a %s schema takes %s)", ErrUnsupportedMessage, msg, schemaType, accepted)
}
