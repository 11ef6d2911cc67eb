package ports

import (
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
)

// bodySchema is the JSON Schema of a webhook body whose data is the protojson form (original
// field names, unpopulated fields emitted) of the payload message md.
func bodySchema(md protoreflect.MessageDescriptor) (*structpb.Struct, error) {
	str := map[string]any{"type": "string"}
	return structpb.NewStruct(map[string]any{
		"$schema":  "https://json-schema.org/draft/2020-12/schema",
		"type":     "object",
		"required": []any{"event", "event_id", "timestamp", "account_id", "data"},
		"properties": map[string]any{
			"event":      str,
			"event_id":   str,
			"timestamp":  map[string]any{"type": "string", "format": "date-time"},
			"account_id": str,
			"test":       map[string]any{"type": "boolean"},
			"data":       messageSchema(md),
		},
	})
}

func messageSchema(md protoreflect.MessageDescriptor) map[string]any {
	props := map[string]any{}
	var required []any
	fields := md.Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		s := fieldSchema(f)
		if f.IsList() {
			s = map[string]any{"type": "array", "items": s}
		}
		props[string(f.Name())] = s
		// protojson emits every field of the payload (EmitUnpopulated), so each is present.
		required = append(required, string(f.Name()))
	}
	return map[string]any{"type": "object", "properties": props, "required": required}
}

func fieldSchema(f protoreflect.FieldDescriptor) map[string]any {
	switch f.Kind() {
	case protoreflect.BoolKind:
		return map[string]any{"type": "boolean"}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return map[string]any{"type": "integer"}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		// protojson writes 64-bit integers as strings.
		return map[string]any{"type": "string", "format": "int64"}
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return map[string]any{"type": "number"}
	case protoreflect.EnumKind:
		var names []any
		vals := f.Enum().Values()
		for i := range vals.Len() {
			names = append(names, string(vals.Get(i).Name()))
		}
		return map[string]any{"type": "string", "enum": names}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if f.Message().FullName() == "google.protobuf.Timestamp" {
			return map[string]any{"type": "string", "format": "date-time"}
		}
		return messageSchema(f.Message())
	}
	return map[string]any{"type": "string"}
}
