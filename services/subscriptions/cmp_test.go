package main

import (
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
)

// cmpProto compares protobuf messages by value.
func cmpProto() cmp.Option {
	return cmp.Comparer(proto.Equal)
}
