package connecttest

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sparkenv/sparkenv/runtime/connect/internal/pb"
)

const sid = "00112233-4455-6677-8899-aabbccddeeff"

// These tests speak the raw protocol, so that they can send what a correct
// client never sends.

func client(t *testing.T, s *Server) pb.SparkConnectServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(s.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewSparkConnectServiceClient(conn)
}

func chunk(b []byte) *pb.AddArtifactsRequest_ArtifactChunk {
	return &pb.AddArtifactsRequest_ArtifactChunk{Data: b, Crc: int64(crc32.ChecksumIEEE(b))}
}

func req(session string) *pb.AddArtifactsRequest {
	return &pb.AddArtifactsRequest{SessionId: session, UserContext: &pb.UserContext{UserId: "u"}}
}

func batch(session string, arts ...*pb.AddArtifactsRequest_SingleChunkArtifact) *pb.AddArtifactsRequest {
	r := req(session)
	r.Payload = &pb.AddArtifactsRequest_Batch_{Batch: &pb.AddArtifactsRequest_Batch{Artifacts: arts}}
	return r
}

func single(name string, data []byte) *pb.AddArtifactsRequest_SingleChunkArtifact {
	return &pb.AddArtifactsRequest_SingleChunkArtifact{Name: name, Data: chunk(data)}
}

func begin(name string, total, n int64, first []byte) *pb.AddArtifactsRequest {
	r := req(sid)
	r.Payload = &pb.AddArtifactsRequest_BeginChunk{BeginChunk: &pb.AddArtifactsRequest_BeginChunkedArtifact{Name: name, TotalBytes: total, NumChunks: n, InitialChunk: chunk(first)}}
	return r
}

func next(b []byte) *pb.AddArtifactsRequest {
	r := req(sid)
	r.Payload = &pb.AddArtifactsRequest_Chunk{Chunk: chunk(b)}
	return r
}

// send runs one stream and returns the response or error.
func send(t *testing.T, c pb.SparkConnectServiceClient, reqs ...*pb.AddArtifactsRequest) (*pb.AddArtifactsResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := c.AddArtifacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		if err := st.Send(r); err != nil {
			break // the status comes with CloseAndRecv
		}
	}
	return st.CloseAndRecv()
}

func bothModes(t *testing.T, f func(t *testing.T, s *Server)) {
	for _, m := range []Mode{Mode35, Mode40} {
		t.Run(m.String(), func(t *testing.T) {
			t.Parallel()
			f(t, Start(t, Config{Mode: m}))
		})
	}
}

// wantErr checks the status per mode: 3.5 says UNKNOWN and nothing else,
// 4.x names the problem.
func wantErr(t *testing.T, s *Server, err error, code codes.Code, text string) {
	t.Helper()
	st, _ := status.FromError(err)
	if s.Mode == Mode35 {
		if st.Code() != codes.Unknown || st.Message() != "" {
			t.Fatalf("3.5: got %v, want UNKNOWN without message", err)
		}
		logs := s.Streams()
		if cause := logs[len(logs)-1].Cause; !strings.Contains(cause, text) {
			t.Fatalf("3.5: cause %q does not mention %q", cause, text)
		}
		return
	}
	if st.Code() != code || !strings.Contains(st.Message(), text) {
		t.Fatalf("4.x: got %v, want %v mentioning %q", err, code, text)
	}
}

func TestSessionIDMustBeUUID(t *testing.T) {
	bothModes(t, func(t *testing.T, s *Server) {
		_, err := send(t, client(t, s), batch("not-a-uuid", single("files/a", []byte("x"))))
		wantErr(t, s, err, codes.Internal, "INVALID_HANDLE.FORMAT")
		_, err = client(t, s).ArtifactStatus(context.Background(), &pb.ArtifactStatusesRequest{SessionId: "x"})
		if err == nil {
			t.Fatal("ArtifactStatus accepted a session id that is not a UUID")
		}
	})
}

func TestNothingCommittedBeforeHalfClose(t *testing.T) {
	bothModes(t, func(t *testing.T, s *Server) {
		ctx, cancel := context.WithCancel(context.Background())
		st, err := client(t, s).AddArtifacts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(batch(sid, single("files/a.txt", []byte("hello")))); err != nil {
			t.Fatal(err)
		}
		// Wait until the server has seen the message, then give up.
		for deadline := time.Now().Add(5 * time.Second); ; {
			if l := s.Streams(); len(l) == 1 && len(l[0].Requests) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the server never saw the message")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if n := s.Names("u", sid); len(n) != 0 {
			t.Fatalf("committed before half-close: %v", n)
		}
		cancel()
		for deadline := time.Now().Add(5 * time.Second); s.Streams()[0].Err == nil; {
			if time.Now().After(deadline) {
				t.Fatal("the server did not notice the cancellation")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if n := s.Names("u", sid); len(n) != 0 {
			t.Fatalf("a cancelled stream committed %v", n)
		}
		if _, err := os.Stat(filepath.Join(s.SessionDir("u", sid), "files", "a.txt")); !os.IsNotExist(err) {
			t.Fatalf("file of a cancelled stream exists: %v", err)
		}
	})
}

func TestCRCMismatchDropsOnlyThatArtifact(t *testing.T) {
	bothModes(t, func(t *testing.T, s *Server) {
		bad := single("files/bad.txt", []byte("bad"))
		bad.Data.Crc++
		resp, err := send(t, client(t, s), batch(sid, single("files/good.txt", []byte("good")), bad))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, a := range resp.GetArtifacts() {
			got[a.GetName()] = a.GetIsCrcSuccessful()
		}
		if len(got) != 2 || !got["files/good.txt"] || got["files/bad.txt"] {
			t.Fatalf("summaries = %v", got)
		}
		if n := s.Names("u", sid); len(n) != 1 || n[0] != "files/good.txt" {
			t.Fatalf("committed %v", n)
		}
		if (resp.GetServerSideSessionId() != "") != (s.Mode == Mode40) || (resp.GetSessionId() == sid) != (s.Mode == Mode40) {
			t.Errorf("%s response session ids: %q, %q", s.Mode, resp.GetSessionId(), resp.GetServerSideSessionId())
		}
	})
}

func TestChunkAccounting(t *testing.T) {
	bothModes(t, func(t *testing.T, s *Server) {
		c := client(t, s)
		a, b := bytes.Repeat([]byte("a"), 10), bytes.Repeat([]byte("b"), 10)

		resp, err := send(t, c, begin("files/ok.bin", 20, 2, a), next(b))
		if err != nil || len(resp.GetArtifacts()) != 1 || !resp.GetArtifacts()[0].GetIsCrcSuccessful() {
			t.Fatalf("well-formed chunked artifact: %v %v", resp, err)
		}
		if got, _ := os.ReadFile(filepath.Join(s.SessionDir("u", sid), "files", "ok.bin")); string(got) != string(a)+string(b) {
			t.Fatalf("stored %q", got)
		}

		_, err = send(t, c, begin("files/short.bin", 30, 3, a), next(b))
		wantErr(t, s, err, codes.Internal, "Missing data chunks")
		_, err = send(t, c, begin("files/bytes.bin", 25, 2, a), next(b))
		wantErr(t, s, err, codes.Internal, "Missing data chunks")
		_, err = send(t, c, begin("files/zero.bin", 10, 0, a))
		wantErr(t, s, err, codes.Internal, "Excessive data chunks")
		_, err = send(t, c, next(a))
		wantErr(t, s, err, codes.Internal, "no chunked artifact open")
		_, err = send(t, c, begin("files/one.bin", 20, 2, a), begin("files/two.bin", 20, 2, a))
		wantErr(t, s, err, codes.Internal, "still open")
		_, err = send(t, c, begin("files/three.bin", 20, 2, a), next(b), next(b))
		wantErr(t, s, err, codes.Internal, "no chunked artifact open")

		// A corrupted chunk drops the whole artifact without failing the RPC.
		bad := next(b)
		bad.GetChunk().Crc ^= 1
		resp, err = send(t, c, begin("files/crc.bin", 20, 2, a), bad)
		if err != nil || resp.GetArtifacts()[0].GetIsCrcSuccessful() {
			t.Fatalf("corrupted chunk: %v %v", resp, err)
		}
		if n := s.Names("u", sid); len(n) != 1 {
			t.Fatalf("committed %v", n)
		}
	})
}

func TestNamesRefused(t *testing.T) {
	bothModes(t, func(t *testing.T, s *Server) {
		c := client(t, s)
		for _, tc := range []struct{ name, want string }{
			{"/etc/passwd", "INVALID_ARTIFACT_PATH"},
			{"files/../../escape", "INVALID_ARTIFACT_PATH"},
			{"", "INVALID_ARTIFACT_PATH"},
			{"archives/a.zip#b#c", "'#' in the path"},
		} {
			_, err := send(t, c, batch(sid, single(tc.name, []byte("x"))))
			wantErr(t, s, err, codes.Internal, tc.want)
		}
		if _, err := os.Stat(filepath.Join(s.Root, "escape")); !os.IsNotExist(err) {
			t.Fatal("an escaping name wrote outside the session")
		}
		// A name that wanders but stays inside is fine, as in Spark.
		if _, err := send(t, c, batch(sid, single("files/x/../y.txt", []byte("y")))); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDuplicates(t *testing.T) {
	bothModes(t, func(t *testing.T, s *Server) {
		c := client(t, s)
		if _, err := send(t, c, batch(sid, single("files/a.txt", []byte("one")))); err != nil {
			t.Fatal(err)
		}
		// Identical bytes, with a new artifact before and after.
		_, err := send(t, c, batch(sid, single("files/before.txt", []byte("b")), single("files/a.txt", []byte("one")), single("files/after.txt", []byte("c"))))
		names := strings.Join(s.Names("u", sid), " ")
		if s.Mode == Mode35 {
			wantErr(t, s, err, codes.Unknown, "Duplicate Artifact")
			// Committed up to the duplicate, nothing after it.
			if names != "files/a.txt files/before.txt" {
				t.Fatalf("3.5 session holds %s", names)
			}
		} else {
			if err != nil {
				t.Fatalf("4.x refused identical bytes: %v", err)
			}
			if names != "files/a.txt files/after.txt files/before.txt" {
				t.Fatalf("4.x session holds %s", names)
			}
		}
		_, err = send(t, c, batch(sid, single("files/a.txt", []byte("two")), single("files/later.txt", []byte("l"))))
		if s.Mode == Mode35 {
			wantErr(t, s, err, codes.Unknown, "Duplicate Artifact")
		} else {
			wantErr(t, s, err, codes.AlreadyExists, "ARTIFACT_ALREADY_EXISTS")
		}
		if got, _ := os.ReadFile(filepath.Join(s.SessionDir("u", sid), "files", "a.txt")); string(got) != "one" {
			t.Fatalf("artifact overwritten with %q", got)
		}
		hasLater := strings.Contains(strings.Join(s.Names("u", sid), " "), "later")
		if hasLater != (s.Mode == Mode40) {
			t.Errorf("%s: artifact after a refused one committed = %v", s.Mode, hasLater)
		}
	})
}

func TestArtifactStatusOnlyCache(t *testing.T) {
	bothModes(t, func(t *testing.T, s *Server) {
		c := client(t, s)
		if _, err := send(t, c, batch(sid, single("cache/abc", []byte("blob")), single("files/f.txt", []byte("f")))); err != nil {
			t.Fatal(err)
		}
		resp, err := c.ArtifactStatus(context.Background(), &pb.ArtifactStatusesRequest{
			SessionId: sid, UserContext: &pb.UserContext{UserId: "u"}, Names: []string{"cache/abc", "cache/def", "files/f.txt"},
		})
		if err != nil {
			t.Fatal(err)
		}
		st := resp.GetStatuses()
		if !st["cache/abc"].GetExists() || st["cache/def"].GetExists() || st["files/f.txt"].GetExists() || len(st) != 3 {
			t.Fatalf("statuses = %v", st)
		}
		// Another user's session of the same id is another session.
		resp, err = c.ArtifactStatus(context.Background(), &pb.ArtifactStatusesRequest{
			SessionId: sid, UserContext: &pb.UserContext{UserId: "other"}, Names: []string{"cache/abc"},
		})
		if err != nil || resp.GetStatuses()["cache/abc"].GetExists() {
			t.Fatalf("other user sees the cache: %v %v", resp, err)
		}
	})
}

func TestUnpackLikeExecutors(t *testing.T) {
	t.Parallel()
	s := Start(t, Config{})
	c := client(t, s)

	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	h := &zip.FileHeader{Name: "bin/run", Method: zip.Store}
	h.SetMode(0o755)
	w, _ := zw.CreateHeader(h)
	w.Write([]byte("#!/bin/sh\n"))
	w, _ = zw.Create("../evil")
	zw.Close()

	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "bin/run", Mode: 0o755, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("abc"))
	tw.WriteHeader(&tar.Header{Name: "link", Linkname: "bin/run", Typeflag: tar.TypeSymlink})
	tw.Close()

	if _, err := send(t, c, batch(sid,
		single("archives/good.zip#z", zipWithout(t, zb.Bytes(), "../evil")),
		single("archives/plain.TAR#t", tb.Bytes()),
		single("archives/bad.zip#bad", zb.Bytes()),
		single("files/tool.pex", []byte("#!/bin/sh\n")),
	)); err != nil {
		t.Fatal(err)
	}
	dir := s.SessionDir("u", sid)
	mode := func(p string) os.FileMode {
		info, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		return info.Mode().Perm()
	}
	if mode("z/bin/run") != 0o755 {
		t.Errorf("zip entry lost its exec bit: %v", mode("z/bin/run"))
	}
	if mode("t/bin/run") != 0o644 {
		t.Errorf(".tar is unpacked without modes (as Java's untar does), got %v", mode("t/bin/run"))
	}
	if target, err := os.Readlink(filepath.Join(dir, "t", "link")); err != nil || target != "bin/run" {
		t.Errorf("tar symlink: %q, %v", target, err)
	}
	if mode("tool.pex") != 0o755 {
		t.Errorf("fetched files are executable, got %v", mode("tool.pex"))
	}
	if errs := s.UnpackErrors(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "leaves") {
		t.Errorf("unpack errors = %v, want the escaping zip entry", errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "evil")); !os.IsNotExist(err) {
		t.Error("a zip entry escaped the alias directory")
	}
}

// zipWithout rebuilds a zip without one entry.
func zipWithout(t *testing.T, b []byte, drop string) []byte {
	r, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range r.File {
		if f.Name != drop {
			if err := zw.Copy(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	zw.Close()
	return out.Bytes()
}

func TestToken(t *testing.T) {
	t.Parallel()
	s := Start(t, Config{Token: "tok"})
	_, err := send(t, client(t, s), batch(sid, single("files/a", []byte("x"))))
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}
}
