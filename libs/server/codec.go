package server

import (
	"bytes"
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// A request that cannot be decoded (invalid UTF-8 in a string field, a truncated field) is the
// caller's mistake and must answer INVALID_ARGUMENT. grpc-go turns every codec error into
// INTERNAL before any interceptor runs, so the codec below does not fail: it leaves the message
// empty except for a marker in its unknown fields, and the interceptors answer INVALID_ARGUMENT
// for a marked request before auth or the handler see it.

// undecodableField is the field number of the marker: the largest one protobuf allows, which no
// message of ours uses.
const undecodableField protowire.Number = protowire.MaxValidNumber

var undecodableMagic = []byte("customertext:undecodable:")

// codec is the proto codec that marks undecodable requests instead of failing.
type codec struct {
	base encoding.CodecV2
}

func newCodec() codec { return codec{base: encoding.GetCodecV2("proto")} }

func (c codec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

func (c codec) Name() string { return c.base.Name() }

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.base.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return err
	}
	proto.Reset(m)
	reason := strings.TrimPrefix(err.Error(), "proto: ")
	var marker []byte
	marker = protowire.AppendTag(marker, undecodableField, protowire.BytesType)
	marker = protowire.AppendBytes(marker, append(append([]byte(nil), undecodableMagic...), reason...))
	m.ProtoReflect().SetUnknown(marker)
	return nil
}

// undecodable returns why req could not be decoded, and whether it could not.
func undecodable(req any) (string, bool) {
	m, ok := req.(proto.Message)
	if !ok {
		return "", false
	}
	b := m.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", false
		}
		b = b[n:]
		if num == undecodableField && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n >= 0 && bytes.HasPrefix(v, undecodableMagic) {
				return string(v[len(undecodableMagic):]), true
			}
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return "", false
		}
		b = b[n:]
	}
	return "", false
}

func undecodableError(reason string) error {
	return status.Errorf(codes.InvalidArgument, "the request cannot be decoded: %s", reason)
}

// rejectUndecodable answers INVALID_ARGUMENT for a request the codec could not decode.
func rejectUndecodable(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if reason, bad := undecodable(req); bad {
		return nil, undecodableError(reason)
	}
	return handler(ctx, req)
}

// rejectUndecodableStream does the same for every message a streaming handler receives.
func rejectUndecodableStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, checkedStream{ss})
}

type checkedStream struct{ grpc.ServerStream }

func (s checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if reason, bad := undecodable(m); bad {
		return undecodableError(reason)
	}
	return nil
}
