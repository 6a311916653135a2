// Schemas: one station per schema type (protobuf, JSON Schema, GraphQL,
// Avro). Producers validate every message before it is sent; consumers
// get it back deserialized.
//
//	go run ./examples/schemas
//
// Runs against an in-process broker unless MEMPHIS_HOST is set.
package main

import (
	"embed"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/examples/internal/env"
)

//go:embed person.*
var schemaFiles embed.FS

// Person is the record every schema below describes.
type Person struct {
	Name string `json:"name" avro:"name"`
	Age  int    `json:"age" avro:"age"`
}

type schemaCase struct {
	typ, file string
	valid     any // a message the schema accepts
	invalid   any // one it refuses
}

func main() {
	conn, closeAll, err := env.Connect()
	if err != nil {
		log.Fatal(err)
	}
	defer closeAll()

	dir, err := os.MkdirTemp("", "memphis-schemas")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	cases := []schemaCase{
		// protobuf takes proto.Message values, wire-format bytes, or a map
		// converted through the schema.
		{memphis.SchemaTypeProtobuf, "person.proto",
			map[string]any{"name": "Ada", "age": 36}, map[string]any{"name": 36}},
		{memphis.SchemaTypeJSON, "person.json", Person{Name: "Ada", Age: 36}, map[string]any{"age": -1}},
		{memphis.SchemaTypeGraphQL, "person.graphql", `{ person(name: "Ada") { name age } }`, `{ person { height } }`},
		{memphis.SchemaTypeAvro, "person.avsc", Person{Name: "Ada", Age: 36}, map[string]any{"name": "Ada"}},
	}
	for _, sc := range cases {
		if err := run(conn, dir, sc); err != nil {
			log.Fatalf("%s: %v", sc.typ, err)
		}
	}
}

func run(conn *memphis.Conn, dir string, sc schemaCase) error {
	content, err := schemaFiles.ReadFile(sc.file)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, sc.file)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		return err
	}
	name := "example-person-" + sc.typ
	if err := conn.CreateSchema(name, sc.typ, path); err != nil {
		return err
	}
	station, err := conn.CreateStation("example-"+sc.typ, memphis.SchemaName(name))
	if err != nil {
		return err
	}
	defer station.Destroy()

	producer, err := station.CreateProducer("people")
	if err != nil {
		return err
	}
	if err := producer.Produce(sc.valid); err != nil {
		return fmt.Errorf("valid message refused: %w", err)
	}
	err = producer.Produce(sc.invalid)
	if !errors.Is(err, memphis.ErrSchemaValidation) {
		return fmt.Errorf("invalid message: got %v, want a schema validation error", err)
	}
	fmt.Printf("%-8s refused: %v\n", sc.typ, err)

	consumer, err := station.CreateConsumer("reader", memphis.BatchMaxWaitTime(time.Second))
	if err != nil {
		return err
	}
	defer consumer.Destroy()
	msgs, err := consumer.Fetch(10, false)
	if err != nil {
		return err
	}
	if len(msgs) != 1 {
		return fmt.Errorf("fetched %d messages, want the 1 valid one", len(msgs))
	}
	v, err := msgs[0].DataDeserialized()
	if err != nil {
		return err
	}
	_ = msgs[0].Ack()
	fmt.Printf("%-8s consumed: %v\n", sc.typ, v)
	return nil
}
