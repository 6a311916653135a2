package schema

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/linker"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/memphisdev/memphis.go/internal/wire"
)

const protoAccepted = "a proto.Message, wire-format []byte or a map[string]any"

// CompileProto compiles .proto content in process, as the broker does with
// protoc when a schema is created
// (docs/protocol.md#quirk-protobuf-first-message). It returns
// the standard, padded base64 of a serialized FileDescriptorSet holding the
// one file "<name>_1.proto" (imports, including the well-known ones, are
// resolved but left out of the set, as protoc does without
// --include_imports), and the name of the first message type the file
// declares, which the broker records in place of the requested one. A file
// that declares no message gives an empty firstMessage and no error: the
// broker's reply for that case is the caller's to choose.
func CompileProto(name, content string) (descriptor string, firstMessage string, err error) {
	f, err := compileProtoFile(name+"_1.proto", content)
	if err != nil {
		return "", "", err
	}
	var fdp *descriptorpb.FileDescriptorProto
	if r, ok := f.(linker.Result); ok {
		fdp = proto.Clone(r.FileDescriptorProto()).(*descriptorpb.FileDescriptorProto)
	} else {
		fdp = protodesc.ToFileDescriptorProto(f)
	}
	// protoc leaves source info out unless asked for it.
	fdp.SourceCodeInfo = nil
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{fdp}}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(set)
	if err != nil {
		return "", "", fmt.Errorf("serializing the descriptor of %s: %w", fdp.GetName(), err)
	}
	if msgs := f.Messages(); msgs.Len() > 0 {
		firstMessage = string(msgs.Get(0).Name())
	}
	return base64.StdEncoding.EncodeToString(raw), firstMessage, nil
}

// compileProtoFile compiles one in-memory .proto file. The standard imports
// (google/protobuf/*.proto) are served from the descriptors linked into the
// binary, so no protoc and no include path are needed.
func compileProtoFile(filename, content string) (linker.File, error) {
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			Accessor: protocompile.SourceAccessorFromMap(map[string]string{filename: content}),
		}),
		// A single file gains nothing from parallel work.
		MaxParallelism: 1,
	}
	files, err := c.Compile(context.Background(), filename)
	if err != nil {
		return nil, err
	}
	return files[0], nil
}

// protoValidator checks messages against one message type of a compiled
// descriptor set.
type protoValidator struct {
	desc      protoreflect.MessageDescriptor
	unmarshal proto.UnmarshalOptions
	marshal   proto.MarshalOptions
	fromJSON  protojson.UnmarshalOptions
	toJSON    protojson.MarshalOptions
}

func newProtoValidator(schemaName string, av wire.SchemaVersion) (*protoValidator, error) {
	var (
		files *protoregistry.Files
		set   []*descriptorpb.FileDescriptorProto
		err   error
	)
	if av.Descriptor != "" {
		files, set, err = loadDescriptorSet(av.Descriptor)
	}
	// The content is the fallback when the broker sent no descriptor or one
	// that cannot be used; compiling it gives the same descriptor the broker
	// would have made.
	if (av.Descriptor == "" || err != nil) && av.SchemaContent != "" {
		desc, _, cerr := CompileProto(schemaName, av.SchemaContent)
		if cerr == nil {
			files, set, cerr = loadDescriptorSet(desc)
		}
		if cerr != nil {
			return nil, errors.Join(err, fmt.Errorf("compiling the schema content: %w", cerr))
		}
		err = nil
	}
	if err != nil {
		return nil, err
	}
	if files == nil {
		return nil, errors.New("protobuf schema has neither a descriptor nor content")
	}
	md, err := findMessage(files, set, av.MessageStructName)
	if err != nil {
		return nil, err
	}
	types := protoTypes{local: dynamicpb.NewTypes(files)}
	return &protoValidator{
		desc:      md,
		unmarshal: proto.UnmarshalOptions{Resolver: types},
		// Deterministic output keeps map fields in a stable order, so equal
		// messages publish equal bytes.
		marshal:  proto.MarshalOptions{Deterministic: true},
		fromJSON: protojson.UnmarshalOptions{Resolver: types},
		toJSON:   protojson.MarshalOptions{Resolver: types},
	}, nil
}

// loadDescriptorSet decodes the broker's base64 FileDescriptorSet. The set
// lacks the files it imports (protoc ran without --include_imports), so
// imports missing from it are looked up among the well-known files linked
// into the binary.
func loadDescriptorSet(b64 string) (*protoregistry.Files, []*descriptorpb.FileDescriptorProto, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		// Be lenient about padding: only the bytes matter.
		var rerr error
		if raw, rerr = base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "=")); rerr != nil {
			return nil, nil, fmt.Errorf("protobuf descriptor is not base64: %w", err)
		}
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		return nil, nil, fmt.Errorf("protobuf descriptor is not a FileDescriptorSet: %w", err)
	}
	if len(set.File) == 0 {
		return nil, nil, errors.New("protobuf descriptor holds no file")
	}
	byName := make(map[string]*descriptorpb.FileDescriptorProto, len(set.File))
	for _, f := range set.File {
		if _, dup := byName[f.GetName()]; dup {
			return nil, nil, fmt.Errorf("protobuf descriptor holds %s twice", f.GetName())
		}
		byName[f.GetName()] = f
	}
	files := new(protoregistry.Files)
	res := fileResolver{local: files}
	const building, built = 1, 2
	state := make(map[string]int, len(set.File))
	// Files are registered after their dependencies whatever order the set
	// lists them in.
	var register func(f *descriptorpb.FileDescriptorProto) error
	register = func(f *descriptorpb.FileDescriptorProto) error {
		switch state[f.GetName()] {
		case built:
			return nil
		case building:
			return fmt.Errorf("protobuf descriptor has an import cycle through %s", f.GetName())
		}
		state[f.GetName()] = building
		for _, dep := range f.GetDependency() {
			if d, ok := byName[dep]; ok {
				if err := register(d); err != nil {
					return err
				}
			}
		}
		fd, err := protodesc.NewFile(f, res)
		if err != nil {
			return fmt.Errorf("protobuf descriptor: %w", err)
		}
		if err := files.RegisterFile(fd); err != nil {
			return fmt.Errorf("protobuf descriptor: %w", err)
		}
		state[f.GetName()] = built
		return nil
	}
	for _, f := range set.File {
		if err := register(f); err != nil {
			return nil, nil, err
		}
	}
	return files, set.File, nil
}

// findMessage finds the schema's message type. The broker names it without
// its package, and its file is not always "<schema>_<version>.proto"
// (docs/protocol.md#schema-validation), so every file's package is tried,
// then the name as given.
// An empty name means the first message of the first file, the one the
// broker would have chosen.
func findMessage(files *protoregistry.Files, set []*descriptorpb.FileDescriptorProto, name string) (protoreflect.MessageDescriptor, error) {
	name = strings.TrimPrefix(name, ".")
	if name == "" {
		fd, err := files.FindFileByPath(set[0].GetName())
		if err == nil && fd.Messages().Len() > 0 {
			return fd.Messages().Get(0), nil
		}
		return nil, errors.New("protobuf schema names no message type and its file declares none")
	}
	candidates := make([]string, 0, len(set)+1)
	for _, f := range set {
		if p := f.GetPackage(); p != "" {
			candidates = append(candidates, p+"."+name)
		}
	}
	candidates = append(candidates, name)
	for _, c := range candidates {
		d, err := files.FindDescriptorByName(protoreflect.FullName(c))
		if err != nil {
			continue
		}
		if md, ok := d.(protoreflect.MessageDescriptor); ok {
			return md, nil
		}
	}
	return nil, fmt.Errorf("protobuf schema has no message type %q", name)
}

// fileResolver resolves imports against the files of the set first, then
// against the well-known files linked into the binary.
type fileResolver struct {
	local *protoregistry.Files
}

func (r fileResolver) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	fd, err := r.local.FindFileByPath(path)
	if errors.Is(err, protoregistry.NotFound) {
		return protoregistry.GlobalFiles.FindFileByPath(path)
	}
	return fd, err
}

func (r fileResolver) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	d, err := r.local.FindDescriptorByName(name)
	if errors.Is(err, protoregistry.NotFound) {
		return protoregistry.GlobalFiles.FindDescriptorByName(name)
	}
	return d, err
}

// protoTypes resolves extensions and google.protobuf.Any payloads against
// the schema's own types first, then the types linked into the binary.
type protoTypes struct {
	local *dynamicpb.Types
}

func (t protoTypes) FindMessageByName(name protoreflect.FullName) (protoreflect.MessageType, error) {
	mt, err := t.local.FindMessageByName(name)
	if errors.Is(err, protoregistry.NotFound) {
		return protoregistry.GlobalTypes.FindMessageByName(name)
	}
	return mt, err
}

func (t protoTypes) FindMessageByURL(url string) (protoreflect.MessageType, error) {
	mt, err := t.local.FindMessageByURL(url)
	if errors.Is(err, protoregistry.NotFound) {
		return protoregistry.GlobalTypes.FindMessageByURL(url)
	}
	return mt, err
}

func (t protoTypes) FindExtensionByName(name protoreflect.FullName) (protoreflect.ExtensionType, error) {
	xt, err := t.local.FindExtensionByName(name)
	if errors.Is(err, protoregistry.NotFound) {
		return protoregistry.GlobalTypes.FindExtensionByName(name)
	}
	return xt, err
}

func (t protoTypes) FindExtensionByNumber(message protoreflect.FullName, field protoreflect.FieldNumber) (protoreflect.ExtensionType, error) {
	xt, err := t.local.FindExtensionByNumber(message, field)
	if errors.Is(err, protoregistry.NotFound) {
		return protoregistry.GlobalTypes.FindExtensionByNumber(message, field)
	}
	return xt, err
}

// Validate accepts a proto.Message (generated, dynamic, or generated by the
// v1 API), wire-format
// []byte, or a map[string]any read as protojson, and returns the message
// in wire format. Whatever the input, the bytes must parse as the schema's
// message without fields the schema does not define: a generated type of
// another message, or of a newer revision of this one, fails here rather
// than publishing data consumers cannot read.
func (v *protoValidator) Validate(msg any) ([]byte, error) {
	switch m := msg.(type) {
	case []byte:
		if _, err := v.parse(m); err != nil {
			return nil, err
		}
		return m, nil
	case proto.Message:
		return v.validateMessage(m)
	case protoadapt.MessageV1:
		// Code generated before the v2 protobuf API still reaches users
		// through old dependencies.
		return v.validateMessage(protoadapt.MessageV2Of(m))
	case map[string]any:
		j, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("message map is not JSON-encodable: %w", err)
		}
		dm := dynamicpb.NewMessage(v.desc)
		if err := v.fromJSON.Unmarshal(j, dm); err != nil {
			return nil, err
		}
		return v.marshal.Marshal(dm)
	}
	return nil, errUnsupported(msg, Protobuf, protoAccepted)
}

func (v *protoValidator) validateMessage(m proto.Message) ([]byte, error) {
	data, err := v.marshal.Marshal(m)
	if err != nil {
		return nil, err
	}
	if _, err := v.parse(data); err != nil {
		return nil, err
	}
	return data, nil
}

// Decode parses a wire-format message and returns it as protojson renders
// it, decoded into a map[string]any: field names in lowerCamelCase, fields
// at their default value left out, 64-bit integers as strings.
func (v *protoValidator) Decode(data []byte) (any, error) {
	m, err := v.parse(data)
	if err != nil {
		return nil, err
	}
	j, err := v.toJSON.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(j, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// parse reads wire-format data as the schema's message, refusing data the
// schema cannot account for.
func (v *protoValidator) parse(data []byte) (*dynamicpb.Message, error) {
	m := dynamicpb.NewMessage(v.desc)
	if err := v.unmarshalSafe(data, m); err != nil {
		return nil, fmt.Errorf("invalid message format, expecting protobuf %s: %w", v.desc.FullName(), err)
	}
	if err := rejectUnknown(m); err != nil {
		return nil, fmt.Errorf("invalid message format, expecting protobuf %s: %w", v.desc.FullName(), err)
	}
	return m, nil
}

func (v *protoValidator) unmarshalSafe(data []byte, m *dynamicpb.Message) (err error) {
	defer recoverAs(&err, "proto: malformed data")
	return v.unmarshal.Unmarshal(data, m)
}

// rejectUnknown fails when m or a message inside it holds fields its
// descriptor does not define. The protobuf runtime keeps such fields (and
// fields sent with the wrong wire type) aside instead of failing, which
// would let almost any byte string pass as a message.
func rejectUnknown(m protoreflect.Message) error {
	if u := m.GetUnknown(); len(u) > 0 {
		return fmt.Errorf("%s has no field %s", m.Descriptor().FullName(), describeUnknown(u))
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, val protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() == nil {
				return true
			}
			val.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if e := rejectUnknown(mv.Message()); e != nil {
					err = fmt.Errorf("%s[%v]: %w", fd.Name(), k.Interface(), e)
				}
				return err == nil
			})
		case fd.Message() == nil:
		case fd.IsList():
			l := val.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				if e := rejectUnknown(l.Get(i).Message()); e != nil {
					err = fmt.Errorf("%s[%d]: %w", fd.Name(), i, e)
				}
			}
		default:
			if e := rejectUnknown(val.Message()); e != nil {
				err = fmt.Errorf("%s: %w", fd.Name(), e)
			}
		}
		return err == nil
	})
	return err
}

// describeUnknown lists the field numbers and wire types of unknown fields,
// which is all that can be said about them.
func describeUnknown(b []byte) string {
	var parts []string
	for len(b) > 0 && len(parts) < 5 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		parts = append(parts, fmt.Sprintf("%d (%s)", num, wireTypeName(typ)))
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			break
		}
		b = b[n+m:]
	}
	if len(parts) == 0 {
		return "(unreadable)"
	}
	return strings.Join(parts, ", ")
}

func wireTypeName(t protowire.Type) string {
	switch t {
	case protowire.VarintType:
		return "varint"
	case protowire.Fixed32Type:
		return "fixed32"
	case protowire.Fixed64Type:
		return "fixed64"
	case protowire.BytesType:
		return "length-delimited"
	case protowire.StartGroupType, protowire.EndGroupType:
		return "group"
	}
	return fmt.Sprintf("wire type %d", t)
}
