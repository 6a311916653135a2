package memphis

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/memphisdev/memphis.go/internal/schema"
	"github.com/memphisdev/memphis.go/internal/wire"
)

// Schema types accepted by CreateSchema.
const (
	SchemaTypeProtobuf = schema.Protobuf
	SchemaTypeJSON     = schema.JSON
	SchemaTypeGraphQL  = schema.GraphQL
	SchemaTypeAvro     = schema.Avro
)

// schemaState is the compiled schema a station enforces. A station without
// a schema has none.
type schemaState struct {
	name    string
	typ     string
	version int
	content string
	v       schema.Validator
}

// setSchema compiles the schema a registration or update announced. The
// same version is compiled once.
func (c *Conn) setSchema(st *stationState, su wire.SchemaUpdateInit) error {
	if su.SchemaName == "" {
		st.schema.Store(nil)
		return nil
	}
	if cur := st.schema.Load(); cur != nil && cur.name == su.SchemaName &&
		cur.version == su.ActiveVersion.VersionNumber && cur.content == su.ActiveVersion.SchemaContent {
		return nil
	}
	v, err := schema.New(su)
	if err != nil {
		return fmt.Errorf("%w: compiling %s schema %s: %w", ErrInvalidSchema, su.SchemaType, su.SchemaName, err)
	}
	st.schema.Store(&schemaState{
		name: su.SchemaName, typ: su.SchemaType, version: su.ActiveVersion.VersionNumber,
		content: su.ActiveVersion.SchemaContent, v: v,
	})
	return nil
}

// onSchemaUpdate follows a station's schema live (PROTOCOL §9.3).
func (c *Conn) onSchemaUpdate(st *stationState, m *nats.Msg) {
	var u wire.SchemaUpdate
	if err := json.Unmarshal(m.Data, &u); err != nil {
		c.log.Warn("memphis: bad schema update", "station", st.intern, "err", err)
		return
	}
	// A drop carries an empty init; other SDKs test the name, so do both.
	if u.UpdateType == wire.SchemaUpdateKindDrop || u.Init.SchemaName == "" {
		st.schema.Store(nil)
		return
	}
	if err := c.setSchema(st, u.Init); err != nil {
		c.log.Error("memphis: schema update not applied", "station", st.intern, "err", err)
	}
}

// encode turns a message into the bytes to publish, validating it against
// the station's schema when it has one.
func (c *Conn) encode(st *stationState, message any) ([]byte, error) {
	sc := st.schema.Load()
	if sc == nil {
		return encodePlain(message)
	}
	data, err := sc.v.Validate(message)
	if err != nil {
		if errors.Is(err, schema.ErrUnsupportedMessage) {
			return nil, fmt.Errorf("%w: %T for %s schema %s: %w", ErrInvalidMessage, message, sc.typ, sc.name, err)
		}
		return nil, &SchemaError{Schema: sc.name, SchemaType: sc.typ, Err: err}
	}
	return data, nil
}

// encodePlain encodes a message for a station without a schema: bytes and
// strings as they are, and, as 1.x did, a protobuf message in its wire
// format and a map[string]any or a struct as JSON.
func encodePlain(message any) ([]byte, error) {
	switch m := message.(type) {
	case []byte:
		return m, nil
	case string:
		return []byte(m), nil
	case proto.Message:
		b, err := proto.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("%w: %T: %w", ErrInvalidMessage, message, err)
		}
		return b, nil
	case map[string]any:
	default:
		if message == nil || reflect.TypeOf(message).Kind() != reflect.Struct {
			return nil, fmt.Errorf("%w: %T (a station without a schema takes []byte, string, "+
				"a proto.Message, a map[string]any or a struct)", ErrInvalidMessage, message)
		}
	}
	b, err := json.Marshal(message)
	if err != nil {
		return nil, fmt.Errorf("%w: %T: %w", ErrInvalidMessage, message, err)
	}
	return b, nil
}

// decode deserializes a consumed message with the station's schema.
func (st *stationState) decode(data []byte) (any, error) {
	sc := st.schema.Load()
	if sc == nil {
		return data, nil
	}
	v, err := sc.v.Decode(data)
	if err != nil {
		return nil, &SchemaError{Schema: sc.name, SchemaType: sc.typ, Err: err}
	}
	return v, nil
}

// reportSchemaFailure tells the broker about a message that failed its
// schema, when the station keeps such failures (PROTOCOL §8.3, §10).
func (c *Conn) reportSchemaFailure(st *stationState, producer string, partition int, message any, hdrs map[string][]string, se *SchemaError) {
	if !st.schemaverseToDLS.Load() {
		return
	}
	raw := messageText(message)
	h := make(map[string]string, len(hdrs)+2)
	for k, v := range hdrs {
		if len(v) > 0 {
			h[k] = v[0]
		}
	}
	h[wire.HdrConnectionID] = c.connID
	h[wire.HdrProducedBy] = producer
	report := wire.SchemaverseDLSMsg{
		StationName:     st.intern,
		Producer:        wire.ProducerDetails{Name: producer, ConnectionID: c.connID},
		Message:         wire.MessagePayload{Data: hex.EncodeToString(raw), Headers: h},
		ValidationError: se.Err.Error(),
		PartitionNumber: partition,
	}
	c.publishJSON(wire.SubjSchemaverseDLS, report)
	if c.sendNotification.Load() {
		c.publishJSON(wire.SubjNotifications, wire.Notification{
			Title: "Schema validation has failed",
			Msg:   fmt.Sprintf("Station: %s\nProducer: %s\nError: %s", wire.ExternalName(st.intern), producer, se.Err),
			Type:  "schema_validation_fail_alert",
			Code:  string(raw),
		})
	}
}

func messageText(message any) []byte {
	switch m := message.(type) {
	case []byte:
		return m
	case string:
		return []byte(m)
	case proto.Message:
		// The wire format is what would have been published; JSON would
		// render a dynamic message as "{}".
		if b, err := (proto.MarshalOptions{Deterministic: true}).Marshal(m); err == nil {
			return b
		}
	}
	if b, err := json.Marshal(message); err == nil {
		return b
	}
	return []byte(fmt.Sprintf("%v", message))
}

// publishJSON sends a fire-and-forget report to the broker.
func (c *Conn) publishJSON(subject string, v any) {
	data, err := json.Marshal(v)
	if err == nil {
		err = c.nc.Publish(subject, data)
	}
	if err != nil {
		c.log.Warn("memphis: report not sent", "subject", subject, "err", err)
	}
}

// CreateSchema creates a schema from a file, or a new version of it if the
// schema exists with other content. It is CreateSchemaContext with
// context.Background; the options are those of 1.x (TimeoutRetry).
func (c *Conn) CreateSchema(name, schemaType, path string, options ...RequestOpt) error {
	ctx, err := requestOptionsContext(context.Background(), options)
	if err != nil {
		return opErr("create schema", "", err)
	}
	return c.CreateSchemaContext(ctx, name, schemaType, path)
}

// CreateSchemaContext creates a schema (schemaType is one of the SchemaType
// constants) from the file at path, or a new version of it when its content
// changed. Creating it again with the same content is not an error. The
// broker checks the content.
//
// The name must be lower-case: the broker stores it as sent but lower-cases
// names when it looks a schema up, so a schema created with upper-case
// letters could never be enforced. Such a name fails with ErrInvalidName
// before anything is sent.
func (c *Conn) CreateSchemaContext(ctx context.Context, name, schemaType, path string) error {
	op := "create schema"
	if err := checkSchemaCreateName(name); err != nil {
		return opErr(op, "", err)
	}
	switch schemaType {
	case schema.Protobuf, schema.JSON, schema.GraphQL, schema.Avro:
	default:
		return opErr(op, "", fmt.Errorf("%w: schema type %q is not one of protobuf, json, graphql, avro", ErrInvalidOption, schemaType))
	}
	content, err := os.ReadFile(path)
	if err != nil {
		return opErr(op, "", fmt.Errorf("%w: reading schema file: %w", ErrInvalidOption, err))
	}
	req := wire.CreateSchemaReq{Name: name, Type: schemaType, CreatedByUsername: c.username, SchemaContent: string(content)}
	reply, err := c.request(ctx, wire.SubjSchemaCreations, req)
	if err != nil {
		return opErr(op, "", err)
	}
	var resp wire.ErrorResp
	if err := json.Unmarshal(reply, &resp); err != nil {
		return opErr(op, "", newBrokerError(string(reply)))
	}
	if resp.Err != "" && !containsFold(resp.Err, "already exists in the db with the same schema content") {
		return opErr(op, "", newBrokerError(resp.Err))
	}
	return nil
}

// checkSchemaCreateName applies the broker's naming rules to the name of a
// schema to create, and refuses upper-case letters: the broker stores the
// name exactly as sent, but attach and station creation lower-case the name
// before the lookup (PROTOCOL §4.3, §9.2, Q12), so such a schema could be
// created and never enforced.
func checkSchemaCreateName(name string) error {
	lower, err := checkName(wire.ObjSchema, name)
	if err != nil {
		return err
	}
	if lower != name {
		return fmt.Errorf("%w: schema name %q has upper-case letters; the broker stores schema names as sent "+
			"but looks them up lower-cased, so this schema could never be enforced: create it as %q", ErrInvalidName, name, lower)
	}
	return nil
}

// EnforceSchema makes a station validate every message against a schema.
// Live producers and consumers of the station follow at once. It is
// EnforceSchemaContext with context.Background; the options are those of
// 1.x (TimeoutRetry).
func (c *Conn) EnforceSchema(name, stationName string, options ...RequestOpt) error {
	ctx, err := requestOptionsContext(context.Background(), options)
	if err != nil {
		return opErr("enforce schema", stationName, err)
	}
	return c.EnforceSchemaContext(ctx, name, stationName)
}

// EnforceSchemaContext makes a station validate every message against a
// schema. The name is case-insensitive, as on the broker: "SensorLogs"
// enforces the schema created as "sensorlogs".
func (c *Conn) EnforceSchemaContext(ctx context.Context, name, stationName string) error {
	op := "enforce schema"
	// The broker looks the schema up lower-cased (PROTOCOL §9.2, Q12).
	lname, err := checkName(wire.ObjSchema, name)
	if err != nil {
		return opErr(op, stationName, err)
	}
	station, err := checkName(wire.ObjStation, stationName)
	if err != nil {
		return opErr(op, stationName, err)
	}
	req := wire.AttachSchemaReq{Name: lname, StationName: station, Username: c.username}
	return opErr(op, station, c.requestText(ctx, wire.SubjSchemaAttachments, req))
}

// AttachSchema enforces a schema on a station.
//
// Deprecated: use EnforceSchema; AttachSchema still works.
func (c *Conn) AttachSchema(name, stationName string) error {
	return c.EnforceSchema(name, stationName)
}

// DetachSchema stops a station enforcing its schema. It is
// DetachSchemaContext with context.Background; the options are those of
// 1.x (TimeoutRetry).
func (c *Conn) DetachSchema(stationName string, options ...RequestOpt) error {
	ctx, err := requestOptionsContext(context.Background(), options)
	if err != nil {
		return opErr("detach schema", stationName, err)
	}
	return c.DetachSchemaContext(ctx, stationName)
}

// DetachSchemaContext stops a station enforcing its schema; live producers
// and consumers follow at once.
func (c *Conn) DetachSchemaContext(ctx context.Context, stationName string) error {
	station, err := checkName(wire.ObjStation, stationName)
	if err != nil {
		return opErr("detach schema", stationName, err)
	}
	req := wire.DetachSchemaReq{StationName: station, Username: c.username}
	return opErr("detach schema", station, c.requestText(ctx, wire.SubjSchemaDetachments, req))
}
