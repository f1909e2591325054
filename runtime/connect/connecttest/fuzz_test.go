package connecttest

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sparkenv/sparkenv/runtime/connect/internal/pb"
)

// FuzzStream feeds arbitrary request sequences (length-prefixed encoded
// messages) to the handler: it must answer or refuse, never panic, and
// never write outside its root.
func FuzzStream(f *testing.F) {
	enc := func(reqs ...*pb.AddArtifactsRequest) []byte {
		var out []byte
		for _, r := range reqs {
			b, _ := proto.Marshal(r)
			out = binary.AppendUvarint(out, uint64(len(b)))
			out = append(out, b...)
		}
		return out
	}
	a := []byte("0123456789")
	f.Add(enc(batch(sid, single("files/a", a), single("archives/x.zip#y", a))))
	f.Add(enc(begin("files/c", 20, 2, a), next(a)))
	f.Add(enc(begin("files/c", 20, 3, a), next(a)))
	f.Add(enc(begin("../../c", 20, 2, a), next(a), next(a)))
	f.Add(enc(batch(sid, single("archives/t.tar#t", a), single("archives/z.tgz", a))))
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "l", Linkname: "../../../..", Typeflag: tar.TypeSymlink})
	tw.WriteHeader(&tar.Header{Name: "l/escaped", Size: 1, Mode: 0o644, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	f.Add(enc(batch(sid, single("archives/evil.tar#e", tb.Bytes()))))
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		s := &Server{Mode: Mode40, Root: filepath.Join(root, "r"), sessions: map[sessionKey]*session{}}
		if len(data) > 0 && data[0]&1 == 1 {
			s.Mode = Mode35
		}
		if err := os.MkdirAll(filepath.Join(s.Root, ".staging"), 0o755); err != nil {
			t.Fatal(err)
		}
		dir, err := os.MkdirTemp(filepath.Join(s.Root, ".staging"), "stream-")
		if err != nil {
			t.Fatal(err)
		}
		st := &streamState{s: s, log: &StreamLog{}, dir: dir, corrupt: -1}
		defer st.cleanup()
		failed := false
		for len(data) > 0 && !failed {
			n, k := binary.Uvarint(data)
			if k <= 0 || n > uint64(len(data)-k) {
				return
			}
			msg := data[k : k+int(n)]
			data = data[k+int(n):]
			req := &pb.AddArtifactsRequest{}
			if proto.Unmarshal(msg, req) != nil {
				return
			}
			st.record(req)
			failed = st.handle(req) != nil
		}
		if !failed {
			st.complete()
		}
		filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err == nil && !strings.HasPrefix(p, s.Root) && p != root {
				t.Fatalf("%s written outside the server root", p)
			}
			return nil
		})
	})
}
