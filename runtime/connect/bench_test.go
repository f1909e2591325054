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
	dir := b.TempDir()
	p := filepath.Join(dir, "big.bin")
	writeFile(b, dir, "big.bin", randomBytes(benchSize, 42), 0o644)
	a, err := connect.NewArtifact(connect.FileName(p), p)
	if err != nil {
		b.Fatal(err)
	}
	a.Name = connect.ContentAddressed(a.Name, a.SHA256)

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
			if err := rawSend(conn, p); err != nil {
				b.Fatal(err)
			}
		}
	})
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

// discardServer implements AddArtifacts by reading every message and
// acknowledging each artifact, with no checks and no disk: the server side
// of the raw stream above, so that push-to-discard against raw-grpc-stream
// measures only what the client adds (protocol messages, CRC-32 per chunk,
// the sha256 check, batching).
type discardServer struct {
	pb.UnimplementedSparkConnectServiceServer
}

func (discardServer) AddArtifacts(st grpc.ClientStreamingServer[pb.AddArtifactsRequest, pb.AddArtifactsResponse]) error {
	var names []string
	for {
		req, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if bc := req.GetBeginChunk(); bc != nil {
			names = append(names, bc.GetName())
		}
		if b := req.GetBatch(); b != nil {
			for _, a := range b.GetArtifacts() {
				names = append(names, a.GetName())
			}
		}
	}
	resp := &pb.AddArtifactsResponse{}
	for _, n := range names {
		resp.Artifacts = append(resp.Artifacts, &pb.AddArtifactsResponse_ArtifactSummary{Name: n, IsCrcSuccessful: true})
	}
	return st.SendAndClose(resp)
}

// BenchmarkPushToDiscard is BenchmarkPush200MB/push against a server that
// drops what it reads, as the raw stream's does.
func BenchmarkPushToDiscard200MB(b *testing.B) {
	dir := b.TempDir()
	p := filepath.Join(dir, "big.bin")
	writeFile(b, dir, "big.bin", randomBytes(benchSize, 42), 0o644)
	a, err := connect.NewArtifact(connect.FileName(p), p)
	if err != nil {
		b.Fatal(err)
	}
	a.Name = connect.ContentAddressed(a.Name, a.SHA256)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(pb.Codec{}))
	pb.RegisterSparkConnectServiceServer(srv, discardServer{})
	go srv.Serve(l)
	defer srv.Stop()
	cs, _ := connect.ParseConnString("sc://" + l.Addr().String() + "/;user_id=bench")
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
