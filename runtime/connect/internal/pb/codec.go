package pb

import (
	"fmt"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Codec is gRPC's protobuf codec without its buffer pool. A 32 KiB artifact
// chunk encodes to a little over 32 KiB, which the default pool serves from
// its 1 MiB tier and clears in full on every message: thirty-two times the
// work of the payload. Exact-size buffers avoid that. It keeps the name
// "proto", so the wire format and content type are the standard ones.
type Codec struct{}

// Marshal encodes v into one buffer of exactly its size; an artifact chunk
// message is encoded around its data without copying it (see
// marshalChunk).
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	if req, ok := v.(*AddArtifactsRequest); ok {
		if p, ok := req.GetPayload().(*AddArtifactsRequest_Chunk); ok && p.Chunk != nil && len(p.Chunk.GetData()) > 0 {
			return marshalChunk(req, p.Chunk)
		}
	}
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

// marshalChunk encodes an AddArtifactsRequest carrying a chunk as three
// pieces: the request's other fields with the chunk's headers, the chunk's
// data itself (not copied: the caller gives every chunk a buffer of its
// own, which gRPC may keep until it is written), and the CRC field. The
// bytes on the wire are a valid encoding of the same message; fields come in
// another order than proto.Marshal's, which protobuf parsers accept.
func marshalChunk(req *AddArtifactsRequest, chunk *AddArtifactsRequest_ArtifactChunk) (mem.BufferSlice, error) {
	rest := &AddArtifactsRequest{
		SessionId:                         req.SessionId,
		UserContext:                       req.UserContext,
		ClientType:                        req.ClientType,
		ClientObservedServerSideSessionId: req.ClientObservedServerSideSessionId,
	}
	head, err := proto.MarshalOptions{}.MarshalAppend(make([]byte, 0, 128), rest)
	if err != nil {
		return nil, err
	}
	data := chunk.GetData()
	var tail []byte
	if crc := chunk.GetCrc(); crc != 0 {
		tail = protowire.AppendTag(tail, 2, protowire.VarintType)
		tail = protowire.AppendVarint(tail, uint64(crc))
	}
	inner := protowire.SizeTag(1) + protowire.SizeBytes(len(data)) + len(tail)
	head = protowire.AppendTag(head, 5, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(inner))
	head = protowire.AppendTag(head, 1, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(data)))
	out := mem.BufferSlice{mem.SliceBuffer(head), mem.SliceBuffer(data)}
	if len(tail) > 0 {
		out = append(out, mem.SliceBuffer(tail))
	}
	return out, nil
}
