package server

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// FuzzUndecodable feeds arbitrary bytes as a request: decoding never fails the codec, and a
// request is reported undecodable exactly when the proto codec refused it or it carried the
// marker itself.
func FuzzUndecodable(f *testing.F) {
	f.Add([]byte{0x0a, 0x02, 0xff, 0xfe})
	f.Add([]byte{0x0a, 0x03, 'a', 'b', 'c'})
	f.Add([]byte{0xfa, 0xff, 0xff, 0xff, 0x0f, 0x01, 'x'})
	f.Add([]byte{})
	c := newCodec()
	f.Fuzz(func(t *testing.T, b []byte) {
		m := &wrapperspb.StringValue{}
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, m); err != nil {
			t.Fatalf("Unmarshal returned %v, want the failure marked instead", err)
		}
		_, bad := undecodable(m)
		refused := c.base.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &wrapperspb.StringValue{}) != nil
		if refused && !bad {
			t.Fatalf("bytes %x refused by the proto codec but not reported undecodable", b)
		}
		if bad && !refused && !bytes.Contains(b, undecodableMagic) {
			t.Fatalf("bytes %x decoded fine but reported undecodable", b)
		}
		// Unknown fields of any message are parsed the same way without panicking.
		e := &emptypb.Empty{}
		e.ProtoReflect().SetUnknown(b)
		_, _ = undecodable(e)
	})
}
