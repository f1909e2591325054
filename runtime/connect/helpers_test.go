package connect_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sparkenv/sparkenv/runtime/connect"
	"github.com/sparkenv/sparkenv/runtime/connect/connecttest"
)

var modes = []connecttest.Mode{connecttest.Mode35, connecttest.Mode40}

// fastRetry keeps fault tests quick; the policy's shape is what is tested.
var fastRetry = connect.RetryPolicy{Attempts: 4, Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}

func forEachMode(t *testing.T, f func(t *testing.T, mode connecttest.Mode)) {
	for _, m := range modes {
		t.Run("spark"+m.String(), func(t *testing.T) {
			t.Parallel()
			f(t, m)
		})
	}
}

func dial(t *testing.T, url string, opts ...connect.Option) *connect.Client {
	t.Helper()
	cs, err := connect.ParseConnString(url)
	if err != nil {
		t.Fatal(err)
	}
	c, err := connect.Dial(context.Background(), cs, append([]connect.Option{connect.WithRetry(fastRetry)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// randomBytes is incompressible, reproducible content.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writeFile(t testing.TB, dir, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// artifactCA describes a local file under the content-addressed form of
// name.
func artifactCA(t testing.TB, name, p string) connect.Artifact {
	t.Helper()
	a, err := connect.NewArtifact(name, p)
	if err != nil {
		t.Fatal(err)
	}
	a.Name = connect.ContentAddressed(a.Name, a.SHA256)
	return a
}

type tarEntry struct {
	name, link string
	data       []byte
	mode       int64
	dir        bool
}

// tarGz writes a gzip-compressed tar with fixed metadata.
func tarGz(t testing.TB, p string, entries []tarEntry) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		switch {
		case e.dir:
			h.Typeflag = tar.TypeDir
			h.Name = strings.TrimSuffix(e.name, "/") + "/"
		case e.link != "":
			h.Typeflag = tar.TypeSymlink
			h.Linkname = e.link
		default:
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Dir(p), filepath.Base(p), buf.Bytes(), 0o644)
}

// zipBytes builds a zip archive in memory (prefix goes before it, as a PEX's
// shebang line does).
func zipBytes(t testing.TB, prefix string, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteString(prefix)
	zw := zip.NewWriter(&buf)
	zw.SetOffset(int64(len(prefix)))
	for _, name := range sortedKeys(files) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: time.Unix(0, 0).UTC()})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(files[name]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func sameFile(t *testing.T, got, want string) {
	t.Helper()
	a, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("%s differs from %s (%d vs %d bytes)", got, want, len(a), len(b))
	}
}

// stored is where the server keeps an artifact of a session.
func stored(srv *connecttest.Server, s connect.Session, name string) string {
	canonical, _, _ := strings.Cut(name, "#")
	return filepath.Join(srv.SessionDir(s.UserID, s.ID), filepath.FromSlash(canonical))
}
