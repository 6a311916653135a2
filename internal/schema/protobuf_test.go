package schema

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// decodeSet reads a descriptor as the SDK receives it.
func decodeSet(t *testing.T, desc string) *descriptorpb.FileDescriptorSet {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(desc)
	if err != nil {
		t.Fatalf("descriptor is not standard padded base64: %v", err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		t.Fatalf("descriptor is not a FileDescriptorSet: %v", err)
	}
	return &set
}

func TestCompileProto(t *testing.T) {
	desc, first, err := CompileProto("pfx-pb", protoContent)
	if err != nil {
		t.Fatal(err)
	}
	if first != "Outer" {
		t.Errorf("first message %q, want Outer (the first one declared)", first)
	}
	set := decodeSet(t, desc)
	if len(set.File) != 1 {
		t.Fatalf("%d files in the set, want 1", len(set.File))
	}
	f := set.File[0]
	if f.GetName() != "pfx-pb_1.proto" {
		t.Errorf("file name %q, want pfx-pb_1.proto", f.GetName())
	}
	if f.GetPackage() != "pk" {
		t.Errorf("package %q, want pk", f.GetPackage())
	}
	if n := len(f.MessageType); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
	if f.SourceCodeInfo != nil {
		t.Error("source info kept; protoc leaves it out")
	}

	// The broker names every SDK-created version's file "_1", whatever the
	// version, so a version 3 must still find its message.
	for _, name := range []string{"Outer", "Inner"} {
		v, err := New(wire.SchemaUpdateInit{SchemaName: "pfx-pb", SchemaType: Protobuf, ActiveVersion: wire.SchemaVersion{
			VersionNumber: 3, Descriptor: desc, SchemaContent: protoContent, MessageStructName: name,
		}})
		if err != nil {
			t.Fatalf("New with the compiled descriptor, message %s: %v", name, err)
		}
		if got := v.(*protoValidator).desc.FullName(); string(got) != "pk."+name {
			t.Errorf("message %s resolved to %s", name, got)
		}
	}

	_, first, err = CompileProto("x", "syntax = \"proto3\";\nmessage B {}\nmessage A { B b = 1; }\n")
	if err != nil || first != "B" {
		t.Errorf("B then A: first %q, err %v; want B", first, err)
	}
	_, first, err = CompileProto("x", "syntax = \"proto3\";\nenum E { E_ZERO = 0; }\n")
	if err != nil || first != "" {
		t.Errorf("no message: first %q, err %v; want empty, nil", first, err)
	}
	if _, _, err := CompileProto("x", "message {"); err == nil {
		t.Error("invalid content compiled")
	}
}

func TestCompileProtoWellKnownImport(t *testing.T) {
	content := `syntax = "proto3";
import "google/protobuf/timestamp.proto";
message Event {
  string name = 1;
  google.protobuf.Timestamp at = 2;
}
`
	desc, first, err := CompileProto("ev", content)
	if err != nil {
		t.Fatal(err)
	}
	set := decodeSet(t, desc)
	if len(set.File) != 1 || set.File[0].GetDependency()[0] != "google/protobuf/timestamp.proto" {
		t.Fatalf("want one file importing timestamp.proto, got %d files", len(set.File))
	}
	// Only the descriptor, as the broker sends it: the import is not in it.
	v, err := New(wire.SchemaUpdateInit{SchemaName: "ev", SchemaType: Protobuf, ActiveVersion: wire.SchemaVersion{
		VersionNumber: 1, Descriptor: desc, MessageStructName: first,
	}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := v.Validate(map[string]any{"name": "boot", "at": "2024-01-02T03:04:05Z"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"name": "boot", "at": "2024-01-02T03:04:05Z"}
	if !jsonEqual(got, want) {
		t.Errorf("Decode = %v, want %v", got, want)
	}
}

func TestProtoMessageLookup(t *testing.T) {
	content := `syntax = "proto3";
package a.b;
message Outer {
  message Nested { int32 n = 1; }
  Nested nested = 1;
}
message Inner { int32 n = 1; }
`
	desc, _, err := CompileProto("lk", content)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, want string }{
		{"Outer", "a.b.Outer"},
		{"Inner", "a.b.Inner"},
		{"a.b.Inner", "a.b.Inner"},
		{".a.b.Inner", "a.b.Inner"},
		{"Outer.Nested", "a.b.Outer.Nested"},
		{"", "a.b.Outer"},
		{"Nope", ""},
		{"n", ""},
	}
	for _, c := range cases {
		v, err := New(wire.SchemaUpdateInit{SchemaName: "lk", SchemaType: Protobuf, ActiveVersion: wire.SchemaVersion{
			VersionNumber: 1, Descriptor: desc, MessageStructName: c.name,
		}})
		if c.want == "" {
			if err == nil {
				t.Errorf("%q: found %s", c.name, v.(*protoValidator).desc.FullName())
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.name, err)
			continue
		}
		if got := string(v.(*protoValidator).desc.FullName()); got != c.want {
			t.Errorf("%q resolved to %s, want %s", c.name, got, c.want)
		}
	}
}

// TestProtoDescriptorSetOrder feeds a set that holds a dependency after the
// file that imports it, as a descriptor made with --include_imports by
// other tools may.
func TestProtoDescriptorSetOrder(t *testing.T) {
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{
			"common.proto": "syntax = \"proto3\";\npackage common;\nmessage Money { int64 cents = 1; }\n",
			"order.proto":  "syntax = \"proto3\";\npackage shop;\nimport \"common.proto\";\nmessage Order { common.Money total = 1; }\n",
		}),
	})}
	files, err := c.Compile(context.Background(), "order.proto", "common.proto")
	if err != nil {
		t.Fatal(err)
	}
	set := &descriptorpb.FileDescriptorSet{}
	for _, f := range files {
		set.File = append(set.File, protodesc.ToFileDescriptorProto(f))
	}
	raw, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(wire.SchemaUpdateInit{SchemaName: "order", SchemaType: Protobuf, ActiveVersion: wire.SchemaVersion{
		VersionNumber: 1, Descriptor: base64.StdEncoding.EncodeToString(raw), MessageStructName: "Order",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Validate(map[string]any{"total": map[string]any{"cents": "150"}}); err != nil {
		t.Error(err)
	}
	if _, err := v.Validate(map[string]any{"total": map[string]any{"euros": 1}}); err == nil {
		t.Error("unknown nested field accepted")
	}
}

func TestProtoContentFallback(t *testing.T) {
	for name, desc := range map[string]string{"no descriptor": "", "broken descriptor": "bm90IGEgZGVzY3JpcHRvcg=="} {
		v, err := New(wire.SchemaUpdateInit{SchemaName: "fb", SchemaType: Protobuf, ActiveVersion: wire.SchemaVersion{
			VersionNumber: 1, Descriptor: desc, SchemaContent: protoContent, MessageStructName: "Outer",
		}})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, err := v.Validate(map[string]any{"id": "x"}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestProtoRequiredFields(t *testing.T) {
	v := newValidator(t, Protobuf, "syntax = \"proto2\";\nmessage P { required string name = 1; optional int32 age = 2; }\n")
	if _, err := v.Validate(map[string]any{"name": "Ada"}); err != nil {
		t.Errorf("complete message: %v", err)
	}
	for name, msg := range map[string]any{
		"map":   map[string]any{"age": 1},
		"bytes": []byte{},
	} {
		_, err := v.Validate(msg)
		if err == nil || errors.Is(err, ErrUnsupportedMessage) {
			t.Errorf("%s without a required field: %v", name, err)
		}
	}
}

// TestProtoCompatibleGeneratedType: a generated type with the same wire
// shape as the schema's message passes, whatever its name.
func TestProtoCompatibleGeneratedType(t *testing.T) {
	v := newValidator(t, Protobuf, "syntax = \"proto3\";\npackage pk;\nmessage Span { int64 seconds = 1; int32 nanos = 2; }\n")
	out, err := v.Validate(durationpb.New(1500 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"seconds": "1", "nanos": 500000000}; !jsonEqual(got, want) {
		t.Errorf("Decode = %v, want %v", got, want)
	}
}

// legacyOuter is shaped like code generated by the v1 protobuf API: no
// ProtoReflect method, only struct tags.
type legacyOuter struct {
	ID  string `protobuf:"bytes,1,opt,name=id,proto3" json:"id,omitempty"`
	Big int64  `protobuf:"varint,5,opt,name=big,proto3" json:"big,omitempty"`
}

func (m *legacyOuter) Reset()         { *m = legacyOuter{} }
func (m *legacyOuter) String() string { return m.ID }
func (*legacyOuter) ProtoMessage()    {}

func TestProtoLegacyMessage(t *testing.T) {
	v := newValidator(t, Protobuf, protoContent)
	out, err := v.Validate(&legacyOuter{ID: "x", Big: 7})
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"id": "x", "big": "7"}; !jsonEqual(got, want) {
		t.Errorf("Decode = %v, want %v", got, want)
	}
}
