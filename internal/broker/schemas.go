package broker

import (
	"errors"
	"fmt"
	"strings"

	"github.com/memphisdev/memphis.go/internal/schema"
	"github.com/memphisdev/memphis.go/internal/wire"
)

// CreateSchemaReq is a schema creation request. The request types carry
// the real broker's names, exported or not, as they appear in its decoding
// errors.
type CreateSchemaReq wire.CreateSchemaReq

type (
	attachSchemaRequest wire.AttachSchemaReq
	detachSchemaRequest wire.DetachSchemaReq
)

func schemaError(msg string) []byte { return mustJSON(wire.ErrorResp{Err: msg}) }

func (cp *controlPlane) createSchema(body []byte) []byte {
	var r CreateSchemaReq
	if err := decode(body, &r); err != nil {
		return schemaError(err.Error())
	}
	if r.SchemaContent == "" {
		return schemaError("your schema content is invalid")
	}
	// Content is checked before the type: an unknown type only fails when
	// the real broker's database refuses it.
	known := true
	if err := schema.CheckContent(r.Type, r.SchemaContent); errors.Is(err, schema.ErrUnknownType) {
		known = false
	} else if err != nil {
		return schemaError(err.Error())
	}
	v := schemaVersion{Content: r.SchemaContent, StructName: r.MessageStructName}
	if r.Type == schema.Protobuf {
		// The first message declared is the one validated against, and the
		// descriptor's file is always <name>_1.proto, as on the real broker
		// (docs/protocol.md#quirk-protobuf-first-message).
		desc, first, err := schema.CompileProto(r.Name, r.SchemaContent)
		if err != nil {
			return schemaError("your Proto file is invalid: " + err.Error())
		}
		v.Descriptor, v.StructName = desc, first
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	// The name is kept exactly as sent, neither checked nor lower-cased
	// (docs/protocol.md#quirk-schema-name-case).
	sc := cp.reg.Schemas[r.Name]
	switch {
	case sc != nil && sc.Type != r.Type:
		return schemaError(fmt.Sprintf("%s already exist with type - %s", r.Name, sc.Type))
	case sc != nil && sc.Versions[len(sc.Versions)-1].Content == r.SchemaContent:
		return schemaError(r.Name + " already exists in the db with the same schema content")
	case sc != nil:
		// A new version starts inactive; only the real broker's UI
		// activates it (docs/protocol.md#quirk-schema-activation-silent).
		v.Number = len(sc.Versions) + 1
		sc.Versions = append(sc.Versions, v)
	case !known:
		return schemaError(fmt.Sprintf("invalid input value for enum enum_type: %q", r.Type))
	default:
		v.Number, v.Active = 1, true
		cp.reg.Schemas[r.Name] = &schemaRec{Name: r.Name, Type: r.Type, Versions: []schemaVersion{v}}
	}
	cp.save()
	return schemaError("")
}

// schemaInit describes the schema a station enforces: its schema's active
// version, or the empty value (docs/protocol.md#schema-in-replies); cp.mu is
// held.
func (cp *controlPlane) schemaInit(st *station) wire.SchemaUpdateInit {
	if st.Schema == "" {
		return wire.SchemaUpdateInit{}
	}
	sc := cp.reg.Schemas[st.Schema]
	if sc == nil || sc.active() == nil {
		return wire.SchemaUpdateInit{}
	}
	v := sc.active()
	return wire.SchemaUpdateInit{
		SchemaName: sc.Name,
		SchemaType: sc.Type,
		ActiveVersion: wire.SchemaVersion{
			VersionNumber: v.Number, Descriptor: v.Descriptor,
			SchemaContent: v.Content, MessageStructName: v.StructName,
		},
	}
}

func (cp *controlPlane) attachSchema(body []byte) []byte {
	var r attachSchemaRequest
	if err := decode(body, &r); err != nil {
		return text(err.Error())
	}
	stName := strings.ToLower(r.StationName)
	if err := wire.ValidateName(wire.ObjStation, stName); err != nil {
		return text(err.Error())
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	st := cp.reg.Stations[stName]
	if st == nil {
		return text("memphis: Station " + stName + " does not exist")
	}
	name := strings.ToLower(r.Name) // as the real broker looks it up, whatever creation stored
	sc := cp.reg.Schemas[name]
	if sc == nil || sc.active() == nil {
		return text("Schema " + name + " does not exist")
	}
	st.Schema, st.SchemaVersion = sc.Name, sc.active().Number
	cp.save()
	cp.publishJSON(wire.SchemaUpdatesSubject(st.Intern), wire.SchemaUpdate{
		UpdateType: wire.SchemaUpdateKindInit, Init: cp.schemaInit(st),
	})
	return nil
}

func (cp *controlPlane) detachSchema(body []byte) []byte {
	var r detachSchemaRequest
	if err := decode(body, &r); err != nil {
		return text(err.Error())
	}
	stName := strings.ToLower(r.StationName)
	if err := wire.ValidateName(wire.ObjStation, stName); err != nil {
		return text(err.Error())
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	st := cp.reg.Stations[stName]
	if st == nil {
		// Lower-case s here, unlike attach's text
		// (docs/protocol.md#quirk-error-text-case).
		return text("station " + stName + " does not exist")
	}
	st.Schema, st.SchemaVersion = "", 0
	cp.save()
	cp.publishJSON(wire.SchemaUpdatesSubject(st.Intern), wire.SchemaUpdate{UpdateType: wire.SchemaUpdateKindDrop})
	return nil
}
