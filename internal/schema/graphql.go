package schema

import (
	"errors"
	"strings"

	"github.com/graph-gophers/graphql-go"
)

// parseGraphQLSchema parses schema content as the broker does: no resolver,
// so the schema can validate operations but never execute them.
func parseGraphQLSchema(content string) (*graphql.Schema, error) {
	return graphql.ParseSchema(content, nil)
}

// graphqlOverlapLimit caps the selection pairs the "fields can merge" rule
// compares. That rule is quadratic: a 46 KB query repeating one field 2,000
// times took 8 s to validate without a cap, and consumers validate what
// they decode, whoever produced it. Real operations stay far below the cap.
const graphqlOverlapLimit = 20000

// graphqlValidator checks GraphQL operations against a schema.
type graphqlValidator struct {
	s *graphql.Schema
}

func newGraphQLValidator(content string) (*graphqlValidator, error) {
	s, err := graphql.ParseSchema(content, nil, graphql.OverlapValidationLimit(graphqlOverlapLimit))
	if err != nil {
		return nil, err
	}
	return &graphqlValidator{s: s}, nil
}

// Validate accepts a GraphQL document as a string or []byte and publishes
// its text unchanged (the official Go SDK published a string JSON-quoted,
// which no other SDK can read back as a query).
func (v *graphqlValidator) Validate(msg any) ([]byte, error) {
	switch m := msg.(type) {
	case string:
		if err := v.check(m); err != nil {
			return nil, err
		}
		return []byte(m), nil
	case []byte:
		if err := v.check(string(m)); err != nil {
			return nil, err
		}
		return m, nil
	}
	return nil, errUnsupported(msg, GraphQL, "a string or []byte GraphQL document")
}

// Decode validates the document and returns its text as a string.
func (v *graphqlValidator) Decode(data []byte) (any, error) {
	q := string(data)
	if err := v.check(q); err != nil {
		return nil, err
	}
	return q, nil
}

func (v *graphqlValidator) check(q string) error {
	errs := v.s.Validate(q)
	if len(errs) == 0 {
		return nil
	}
	texts := make([]string, len(errs))
	for i, e := range errs {
		texts[i] = e.Error()
	}
	return errors.New(strings.Join(texts, "; "))
}
