package pb

import (
	"testing"

	"google.golang.org/protobuf/proto"
)

// The chunk encoding written by hand decodes to exactly the message it
// encodes, whatever the CRC (zero is omitted, as proto3 does).
func TestChunkEncodingRoundTrips(t *testing.T) {
	ct, observed := "sparkenv/test", "srv-1"
	for _, crc := range []int64{0, 1, 4294967295} {
		for _, n := range []int{1, 127, 128, 32 << 10} {
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(i * 7)
			}
			in := &AddArtifactsRequest{
				SessionId:                         "6f1b5c9e-0c55-4c59-9a8c-2a4e7e0b1a11",
				UserContext:                       &UserContext{UserId: "ana", UserName: "Ana"},
				ClientType:                        &ct,
				ClientObservedServerSideSessionId: &observed,
				Payload:                           &AddArtifactsRequest_Chunk{Chunk: &AddArtifactsRequest_ArtifactChunk{Data: data, Crc: crc}},
			}
			bs, err := Codec{}.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			if len(bs) < 2 {
				t.Fatalf("chunk of %d bytes was not encoded around its data", n)
			}
			out := &AddArtifactsRequest{}
			if err := proto.Unmarshal(bs.Materialize(), out); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(in, out) {
				t.Fatalf("crc %d, %d bytes: decoded %v", crc, n, out)
			}
			if want := proto.Size(in); bs.Len() != want {
				t.Fatalf("encoded %d bytes, proto.Size says %d", bs.Len(), want)
			}
		}
	}
}
