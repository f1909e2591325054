package connect_test

import (
	"bytes"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sparkenv/sparkenv/internal/testutil"
	"github.com/sparkenv/sparkenv/runtime/connect/internal/pb"
)

// TestWireNumbers decodes our messages with protoc's schema-less decoder and
// compares the field numbers with Spark's protocol (base.proto): a wrong
// number would compile and pass every other test against our own server,
// and fail only against Spark.
func TestWireNumbers(t *testing.T) {
	t.Parallel()
	protoc := testutil.Tool(t, "protoc")
	s := func(v string) *string { return &v }
	decode := func(m proto.Message) string {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(protoc, "--decode_raw")
		cmd.Stdin = bytes.NewReader(b)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("protoc --decode_raw: %v: %s", err, out)
		}
		return topLevelSorted(strings.Fields(string(out)))
	}
	uc := &pb.UserContext{UserId: "uid", UserName: "Bob"}
	cases := []struct {
		m    proto.Message
		want string
	}{
		{&pb.AddArtifactsRequest{SessionId: "sid", UserContext: uc, ClientType: s("ct"), ClientObservedServerSideSessionId: s("obs"),
			Payload: &pb.AddArtifactsRequest_Batch_{Batch: &pb.AddArtifactsRequest_Batch{Artifacts: []*pb.AddArtifactsRequest_SingleChunkArtifact{
				{Name: "n", Data: &pb.AddArtifactsRequest_ArtifactChunk{Data: []byte("d"), Crc: 7}}}}}},
			`1: "sid" 2 { 1: "uid" 2: "Bob" } 3 { 1 { 1: "n" 2 { 1: "d" 2: 7 } } } 6: "ct" 7: "obs"`},
		{&pb.AddArtifactsRequest{Payload: &pb.AddArtifactsRequest_BeginChunk{BeginChunk: &pb.AddArtifactsRequest_BeginChunkedArtifact{
			Name: "n", TotalBytes: 9, NumChunks: 3, InitialChunk: &pb.AddArtifactsRequest_ArtifactChunk{Data: []byte("d"), Crc: 4294967295}}}},
			`4 { 1: "n" 2: 9 3: 3 4 { 1: "d" 2: 4294967295 } }`},
		{&pb.AddArtifactsRequest{Payload: &pb.AddArtifactsRequest_Chunk{Chunk: &pb.AddArtifactsRequest_ArtifactChunk{Data: []byte("d"), Crc: 1}}},
			`5 { 1: "d" 2: 1 }`},
		{&pb.AddArtifactsResponse{Artifacts: []*pb.AddArtifactsResponse_ArtifactSummary{{Name: "n", IsCrcSuccessful: true}}, SessionId: "sid", ServerSideSessionId: "ssid"},
			`1 { 1: "n" 2: 1 } 2: "sid" 3: "ssid"`},
		{&pb.ArtifactStatusesRequest{SessionId: "sid", UserContext: uc, ClientType: s("ct"), Names: []string{"cache/x"}, ClientObservedServerSideSessionId: s("obs")},
			`1: "sid" 2 { 1: "uid" 2: "Bob" } 3: "ct" 4: "cache/x" 5: "obs"`},
		{&pb.ArtifactStatusesResponse{Statuses: map[string]*pb.ArtifactStatusesResponse_ArtifactStatus{"cache/x": {Exists: true}}, SessionId: "sid", ServerSideSessionId: "ssid"},
			`1 { 1: "cache/x" 2 { 1: 1 } } 2: "sid" 3: "ssid"`},
	}
	for _, tc := range cases {
		if _, isMap := tc.m.(*pb.ArtifactStatusesResponse); !isMap {
			// The pool-free codec must put the same bytes on the wire.
			bs, err := pb.Codec{}.Marshal(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			std, _ := proto.Marshal(tc.m)
			if !bytes.Equal(bs.Materialize(), std) {
				t.Errorf("%T: pb.Codec and proto.Marshal disagree", tc.m)
			}
		}
		if got, want := decode(tc.m), topLevelSorted(strings.Fields(tc.want)); got != want {
			t.Errorf("%T on the wire:\n got %s\nwant %s", tc.m, got, tc.want)
		}
	}
	if got, want := pb.SparkConnectService_AddArtifacts_FullMethodName, "/spark.connect.SparkConnectService/AddArtifacts"; got != want {
		t.Errorf("method %s, want %s", got, want)
	}
	if got, want := pb.SparkConnectService_ArtifactStatus_FullMethodName, "/spark.connect.SparkConnectService/ArtifactStatus"; got != want {
		t.Errorf("method %s, want %s", got, want)
	}
}

// topLevelSorted joins decode_raw tokens with the top-level fields sorted:
// the order of fields on the wire is free, their numbers are not.
func topLevelSorted(tokens []string) string {
	var fields []string
	var cur []string
	depth := 0
	for _, tok := range tokens {
		cur = append(cur, tok)
		switch {
		case tok == "{":
			depth++
		case tok == "}":
			depth--
		}
		if depth == 0 && (tok == "}" || !strings.HasSuffix(tok, ":") && len(cur) >= 2 && strings.HasSuffix(cur[0], ":")) {
			fields = append(fields, strings.Join(cur, " "))
			cur = nil
		}
	}
	sort.Strings(fields)
	return strings.Join(fields, " ")
}
