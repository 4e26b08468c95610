package server

import (
	"sync"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// codec is grpc-go's proto codec, except for a request that does not decode
// (truncated wire data, a string that is not UTF-8) or carries a Duration
// or Timestamp out of its range. grpc-go answers a codec's error with
// INTERNAL "failed to unmarshal" itself, before any interceptor, so no call
// record, metric or ErrorInfo would follow. Instead the codec leaves the
// message empty but for the error, kept in an unknown field, and succeeds;
// the validator then answers INVALID_ARGUMENT with the field at fault, after
// authentication, logged and counted like every other invalid request.
type codec struct {
	encoding.CodecV2
}

// newCodec wraps the registered proto codec.
func newCodec() codec { return codec{encoding.GetCodecV2("proto")} }

// Unmarshal decodes data into v, or records in v why it could not.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	m, ok := v.(proto.Message)
	if !ok {
		return err
	}
	var field string
	switch {
	case err == nil && len(m.ProtoReflect().GetUnknown()) > 0:
		// The marker fields are ours alone: a caller's are dropped, so that
		// no request can pass itself off as malformed with words of its own.
		m.ProtoReflect().SetUnknown(withoutMarkers(m.ProtoReflect().GetUnknown()))
		field, err = checkWellKnown(m.ProtoReflect())
	case err != nil:
		// The decoder's error names no field; a string that is not UTF-8
		// is found by reading the wire again.
		field = invalidUTF8(m.ProtoReflect().Descriptor(), data.Materialize())
	default:
		field, err = checkWellKnown(m.ProtoReflect())
	}
	if err != nil {
		proto.Reset(m)
		b := protowire.AppendString(protowire.AppendTag(nil, malformedField, protowire.BytesType), err.Error())
		b = protowire.AppendString(protowire.AppendTag(b, malformedFieldName, protowire.BytesType), field)
		m.ProtoReflect().SetUnknown(b)
	}
	return nil
}

// The unknown fields that carry a decoding error and the field at fault:
// the largest field numbers, which no message of the API uses.
const (
	malformedField     protowire.Number = protowire.MaxValidNumber
	malformedFieldName protowire.Number = protowire.MaxValidNumber - 1
)

// checkWellKnown rejects Durations and Timestamps out of their documented
// range (nanos of the wrong sign or too many), which Go would otherwise
// normalise into a value the caller did not send. It returns the field's
// path.
func checkWellKnown(m protoreflect.Message) (field string, err error) {
	for _, fd := range timeFields(m.Descriptor()) {
		if !m.Has(fd) {
			continue
		}
		check := func(m protoreflect.Message) {
			switch x := m.Interface().(type) {
			case *durationpb.Duration:
				err = x.CheckValid()
			case *timestamppb.Timestamp:
				err = x.CheckValid()
			default:
				var sub string
				if sub, err = checkWellKnown(m); err != nil {
					field = string(fd.Name()) + "." + sub
					return
				}
			}
			if err != nil {
				field = string(fd.Name())
			}
		}
		v := m.Get(fd)
		if fd.IsList() {
			for i := 0; i < v.List().Len() && err == nil; i++ {
				check(v.List().Get(i).Message())
			}
		} else {
			check(v.Message())
		}
		if err != nil {
			return field, err
		}
	}
	return "", nil
}

// timeFieldsOf caches timeFields per message type.
var timeFieldsOf sync.Map // protoreflect.FullName -> []protoreflect.FieldDescriptor

// timeFields are the fields of md that are, or lead to, a Duration or a
// Timestamp (maps aside): the only ones checkWellKnown needs to look at.
func timeFields(md protoreflect.MessageDescriptor) []protoreflect.FieldDescriptor {
	if v, ok := timeFieldsOf.Load(md.FullName()); ok {
		return v.([]protoreflect.FieldDescriptor)
	}
	var out []protoreflect.FieldDescriptor
	fields := md.Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); fd.Message() != nil && !fd.IsMap() && holdsTime(fd.Message(), map[protoreflect.FullName]bool{}) {
			out = append(out, fd)
		}
	}
	timeFieldsOf.Store(md.FullName(), out)
	return out
}

// holdsTime reports whether a message is, or has a field leading to, a
// Duration or a Timestamp.
func holdsTime(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]bool) bool {
	switch md.FullName() {
	case "google.protobuf.Duration", "google.protobuf.Timestamp":
		return true
	}
	if seen[md.FullName()] {
		return false
	}
	seen[md.FullName()] = true
	fields := md.Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); fd.Message() != nil && !fd.IsMap() && holdsTime(fd.Message(), seen) {
			return true
		}
	}
	return false
}

// invalidUTF8 returns the path of the first string field of md in b that is
// not UTF-8, "" if none is (or b is not readable that far).
func invalidUTF8(md protoreflect.MessageDescriptor, b []byte) string {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return ""
		}
		if fd := md.Fields().ByNumber(num); fd != nil && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b)
			switch {
			case fd.Kind() == protoreflect.StringKind && !utf8.Valid(v):
				return string(fd.Name())
			case fd.Message() != nil && !fd.IsMap():
				if sub := invalidUTF8(fd.Message(), v); sub != "" {
					return string(fd.Name()) + "." + sub
				}
			}
		}
		b = b[n:]
	}
	return ""
}

// withoutMarkers returns unknown-field bytes without the marker fields.
func withoutMarkers(b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return out
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return out
		}
		if num != malformedField && num != malformedFieldName {
			out = append(out, b[:n+m]...)
		}
		b = b[n+m:]
	}
	return out
}

// malformed returns the decoding error the codec recorded in m, if any, and
// the request field at fault ("" when unknown).
func malformed(m proto.Message) (msg, field string, ok bool) {
	b := m.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", "", false
		}
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return "", "", false
		}
		if typ == protowire.BytesType {
			switch v, _ := protowire.ConsumeString(b); num {
			case malformedField:
				msg, ok = v, true
			case malformedFieldName:
				field = v
			}
		}
		b = b[n:]
	}
	return msg, field, ok
}
