package pb

import (
	"fmt"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// Codec is gRPC's protobuf codec without its buffer pool. A 32 KiB artifact
// chunk encodes to a little over 32 KiB, which the default pool serves from
// its 1 MiB tier and clears in full on every message: thirty-two times the
// work of the payload. Exact-size buffers avoid that. It keeps the name
// "proto", so the wire format and content type are the standard ones.
type Codec struct{}

// Marshal encodes v into one buffer of exactly its size.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("pb.Codec: %T is not a protobuf message", v)
	}
	opts := proto.MarshalOptions{UseCachedSize: true}
	b, err := opts.MarshalAppend(make([]byte, 0, proto.Size(m)), m)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

// Unmarshal decodes data into v.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("pb.Codec: %T is not a protobuf message", v)
	}
	return proto.Unmarshal(data.Materialize(), m)
}

// Name is the standard codec's name, so that peers see nothing different.
func (Codec) Name() string { return "proto" }
