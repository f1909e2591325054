package pkg

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/dsnet/compress/bzip2"
	"github.com/klauspost/compress/zstd"
)

// makeTree writes a small package tree with every kind of member Write
// handles: plain and executable files, a symlink, an empty directory, a
// long and a non-ASCII name, and info/ with index.json and paths.json.
func makeTree(t testing.TB, dir, name string) {
	t.Helper()
	long := "lib/python3.11/site-packages/" + strings.Repeat("deep/", 20) + "module_with_a_rather_long_name.py"
	files := map[string]string{
		"bin/" + name:                "#!/bin/sh\necho hello\n",
		"lib/lib" + name + ".so.1":   "\x7fELF\x00binary\x00content",
		"share/" + name + "/a.txt":   "some text\n",
		"share/" + name + "/ünï.txt": "unicode name\n",
		long:                         "x = 1\n",
	}
	var entries []PathsEntry
	for p, c := range files {
		writeFile(t, dir, p, c, strings.HasPrefix(p, "bin/"))
		entries = append(entries, PathsEntry{Path: p, PathType: PathHardlink, SHA256: sha(c), Size: int64(len(c))})
	}
	if err := os.Symlink("lib"+name+".so.1", filepath.Join(dir, "lib", "lib"+name+".so")); err != nil {
		t.Fatal(err)
	}
	entries = append(entries, PathsEntry{Path: "lib/lib" + name + ".so", PathType: PathSoftlink})
	if err := os.MkdirAll(filepath.Join(dir, "var", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	entries = append(entries, PathsEntry{Path: "var/empty", PathType: PathDirectory})
	pj, err := MarshalPathsJSON(entries)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "info/paths.json", string(pj), false)
	writeFile(t, dir, "info/index.json", fmt.Sprintf(`{"name": %q, "version": "1.0", "build": "h0_0", "build_number": 0, "depends": ["libc >=2"], "subdir": "linux-64", "timestamp": 1700000000000}`, name), false)
	writeFile(t, dir, "info/run_exports.json", `{"weak": ["`+name+` >=1.0,<2"]}`, false)
}

func writeFile(t testing.TB, dir, rel, content string, exec bool) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	mode := fs.FileMode(0o644)
	if exec {
		mode = 0o755
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func fileSHA(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha(string(b))
}

// treeOf describes a directory: per path, its kind, executable bit and
// content digest or link target.
func treeOf(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case st.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out[rel] = "link " + l
		case st.IsDir():
			out[rel] = "dir"
		default:
			out[rel] = fmt.Sprintf("file x=%v %s", st.Mode()&0o100 != 0, fileSHA(t, p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffTrees(t testing.TB, want, got map[string]string) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	bad := 0
	for _, k := range keys {
		if want[k] != got[k] {
			t.Errorf("%s: want %q, got %q", k, want[k], got[k])
			bad++
		}
	}
	if bad > 0 {
		t.FailNow()
	}
}

// rawEntry is a tar member written as is, to build archives Write would
// never produce.
type rawEntry struct {
	hdr  tar.Header
	data string
}

func rawTar(t testing.TB, entries []rawEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if h.Mode == 0 && h.Typeflag != tar.TypeXGlobalHeader {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeRawTarBz2(t testing.TB, path string, entries []rawEntry) {
	t.Helper()
	var buf bytes.Buffer
	bw, err := bzip2.NewWriter(&buf, &bzip2.WriterConfig{Level: 1})
	if err != nil {
		t.Fatal(err)
	}
	bw.Write(rawTar(t, entries))
	bw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func zst(t testing.TB, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return enc.EncodeAll(b, nil)
}

// writeRawConda writes a .conda from named zip members, in order.
func writeRawConda(t testing.TB, path string, members [][2]string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: m[0], Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, m[1])
	}
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func condaOf(t testing.TB, path, stem string, info, payload []rawEntry) {
	t.Helper()
	writeRawConda(t, path, [][2]string{
		{"metadata.json", metadataJSON},
		{"pkg-" + stem + ".tar.zst", string(zst(t, rawTar(t, payload)))},
		{"info-" + stem + ".tar.zst", string(zst(t, rawTar(t, info)))},
	})
}

func indexEntry(name string) rawEntry {
	return rawEntry{hdr: tar.Header{Name: "info/index.json", Typeflag: tar.TypeReg},
		data: fmt.Sprintf(`{"name": %q, "version": "1", "build": "0", "build_number": 0}`, name)}
}

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sortStrings(s []string) { sort.Strings(s) }
