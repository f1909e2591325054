package connect_test

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sparkenv/sparkenv/runtime/connect"
	"github.com/sparkenv/sparkenv/runtime/connect/connecttest"
	"github.com/sparkenv/sparkenv/runtime/connect/internal/pb"
)

const benchSize = 200 << 20

// BenchmarkPush200MB compares Push of a 200 MiB file to the test server
// (32 KiB chunks with CRC-32 on both sides and a sha256 check on the client,
// staged to disk and committed by the server) with the floor: the same
// bytes read from the same file and sent over loopback as one gRPC stream
// of 32 KiB messages that the server drops unread.
//
//	go test ./runtime/connect -run '^$' -bench Push200MB -benchtime 3x
func BenchmarkPush200MB(b *testing.B) {
	a := bigArtifact(b)

	b.Run("push", func(b *testing.B) {
		srv := connecttest.Start(b, connecttest.Config{Mode: connecttest.Mode40})
		cs, _ := connect.ParseConnString(srv.URL("user_id=bench"))
		c, err := connect.Dial(context.Background(), cs)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.SetBytes(benchSize)
		defer reportCPU(b)()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			// A new session each time: a re-push would only be compared.
			s := connect.Session{ID: connect.NewSessionID(), UserID: "bench"}
			if _, err := connect.Push(context.Background(), c, s, a); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			os.RemoveAll(srv.SessionDir("bench", s.ID))
			b.StartTimer()
		}
	})

	b.Run("raw-grpc-stream", func(b *testing.B) {
		addr := startSink(b)
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		b.SetBytes(benchSize)
		defer reportCPU(b)()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := rawSend(conn, a.Path); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// bigArtifact writes a 200 MiB file of random bytes and describes it.
func bigArtifact(b *testing.B) connect.Artifact {
	b.Helper()
	dir := b.TempDir()
	p := filepath.Join(dir, "big.bin")
	writeFile(b, dir, "big.bin", randomBytes(benchSize, 42), 0o644)
	// A bundle is built some time before it is pushed: let its identity
	// settle, so that NewArtifact's digest can be trusted without reading
	// the file again (see NewArtifact).
	time.Sleep(2100 * time.Millisecond)
	a, err := connect.NewArtifact(connect.FileName(p), p)
	if err != nil {
		b.Fatal(err)
	}
	a.Name = connect.ContentAddressed(a.Name, a.SHA256)
	return a
}

// reportCPU adds the process's CPU time per operation, and the throughput
// per CPU second, which stay comparable when the machine is busy and wall
// time is not. Client and server share the process, so both are counted.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		cpu := (cpuTime() - start).Seconds()
		b.ReportMetric(cpu*1000/float64(b.N), "cpu-ms/op")
		b.ReportMetric(float64(benchSize)*float64(b.N)/1e6/cpu, "MB/cpu-s")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawCodec passes []byte messages through untouched.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = data
	return nil
}
func (rawCodec) Name() string { return "sparkenv-raw" }

var _ encoding.Codec = rawCodec{}

// startSink serves one method that reads and drops every message.
func startSink(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(func(_ any, st grpc.ServerStream) error {
		var m []byte
		for {
			if err := st.RecvMsg(&m); err == io.EOF {
				return st.SendMsg(&[]byte{})
			} else if err != nil {
				return err
			}
		}
	}))
	go srv.Serve(l)
	b.Cleanup(srv.Stop)
	return l.Addr().String()
}

func rawSend(conn *grpc.ClientConn, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := conn.NewStream(context.Background(), &grpc.StreamDesc{ClientStreams: true}, "/bench.Sink/Drain", grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return err
	}
	for {
		buf := make([]byte, connect.ChunkSize)
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			m := buf[:n]
			if err := st.SendMsg(&m); err != nil {
				return err
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	var reply []byte
	return st.RecvMsg(&reply)
}

// startDiscard serves AddArtifacts the way startSink serves the raw stream:
// messages are read as bytes and dropped, never decoded into protobuf
// structs; only the artifact names are picked out of the wire format
// (without copying) so that the response can acknowledge each one.
func startDiscard(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(func(_ any, st grpc.ServerStream) error {
		var names []string
		var m []byte
		for {
			if err := st.RecvMsg(&m); err == io.EOF {
				break
			} else if err != nil {
				return err
			}
			names = appendNames(names, m)
		}
		resp := &pb.AddArtifactsResponse{}
		for _, n := range names {
			resp.Artifacts = append(resp.Artifacts, &pb.AddArtifactsResponse_ArtifactSummary{Name: n, IsCrcSuccessful: true})
		}
		out, err := proto.Marshal(resp)
		if err != nil {
			return err
		}
		return st.SendMsg(&out)
	}))
	go srv.Serve(l)
	b.Cleanup(srv.Stop)
	return l.Addr().String()
}

// appendNames adds the names of an AddArtifactsRequest's batch entries
// (field 3 → 1 → 1) and begin_chunk (field 4 → 1).
func appendNames(names []string, m []byte) []string {
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 {
			return names
		}
		m = m[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, m)
			if n < 0 {
				return names
			}
			m = m[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(m)
		if n < 0 {
			return names
		}
		m = m[n:]
		switch num {
		case 3: // batch: repeated SingleChunkArtifact artifacts = 1
			for _, art := range subFields(v, 1) {
				names = append(names, string(firstField(art, 1)))
			}
		case 4: // begin_chunk: name = 1
			names = append(names, string(firstField(v, 1)))
		}
	}
	return names
}

func subFields(m []byte, want protowire.Number) [][]byte {
	var out [][]byte
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 {
			return out
		}
		m = m[n:]
		if typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(m)
			if n < 0 {
				return out
			}
			if num == want {
				out = append(out, v)
			}
			m = m[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, m)
		if n < 0 {
			return out
		}
		m = m[n:]
	}
	return out
}

func firstField(m []byte, want protowire.Number) []byte {
	if f := subFields(m, want); len(f) > 0 {
		return f[0]
	}
	return nil
}

// BenchmarkPushToDiscard is BenchmarkPush200MB/push against a server that
// drops what it reads, as the raw stream's does: the two differ only in
// what the client does.
func BenchmarkPushToDiscard200MB(b *testing.B) {
	a := bigArtifact(b)
	cs, _ := connect.ParseConnString("sc://" + startDiscard(b) + "/;user_id=bench")
	c, err := connect.Dial(context.Background(), cs)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.SetBytes(benchSize)
	defer reportCPU(b)()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := connect.Session{ID: connect.NewSessionID(), UserID: "bench"}
		if _, err := connect.Push(context.Background(), c, s, a); err != nil {
			b.Fatal(err)
		}
	}
}
