package main

import (
	"fmt"

	protov1 "github.com/golang/protobuf/proto"
	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// codec replaces grpc-go's "proto" codec. grpc-go 1.33's own codec marshals through
// github.com/golang/protobuf, and Debian 12 ships that package at 1.3.5, the last version before
// it became a shim over google.golang.org/protobuf: its table-driven reflection does not know
// messages made by today's protoc-gen-go (APIv2) and panics unmarshalling them ("protobuf tag not
// enough fields in EchoRequest.state"). So messages with ProtoReflect (ours) go through
// google.golang.org/protobuf's fast path, and the rest (grpc's health messages, which Debian
// generated with the old generator) through the old package, as before.
type codec struct{}

var (
	marshal   = proto.MarshalOptions{}
	unmarshal = proto.UnmarshalOptions{}
)

func (codec) Marshal(v interface{}) ([]byte, error) {
	switch m := v.(type) {
	case protoreflect.ProtoMessage:
		return marshal.Marshal(m)
	case protov1.Message:
		return protov1.Marshal(m)
	}
	return nil, fmt.Errorf("codec: cannot marshal %T: not a protocol buffer message", v)
}

func (codec) Unmarshal(data []byte, v interface{}) error {
	switch m := v.(type) {
	case protoreflect.ProtoMessage:
		return unmarshal.Unmarshal(data, m) // resets m first
	case protov1.Message:
		return protov1.Unmarshal(data, m)
	}
	return fmt.Errorf("codec: cannot unmarshal into %T: not a protocol buffer message", v)
}

// Name is the content subtype: "proto" is what application/grpc and application/grpc+proto mean.
func (codec) Name() string { return "proto" }

// Registered in init, after grpc's own encoding/proto init (an imported package's init runs
// first), so this one replaces it for every call.
func init() { encoding.RegisterCodec(codec{}) }
