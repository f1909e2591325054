package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sparkenv/sparkenv/internal/testutil"
)

// treeEntries is the tree without Python caches: what every format holds.
func treeEntries(t testing.TB, root string) []Entry {
	t.Helper()
	es, err := Collect(root, CollectOptions{SkipPycache: true})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func writeFile(t testing.TB, format Format, es []Entry, opts Options) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out."+format.String())
	if err := Write(context.Background(), out, format, es, opts); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	root := makeTree(t)
	es := treeEntries(t, root)
	// A second tree with the same content written at other times and
	// with other permission bits beyond the exec bit.
	root2 := makeTree(t)
	must(t, os.Chmod(filepath.Join(root2, "lib", "a.txt"), 0o664))
	es2 := treeEntries(t, root2)
	for _, f := range []Format{Zip, Tar, TarGz, TarZst} {
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			opts := Options{Symlinks: Keep}
			if f == Zip {
				opts.Symlinks = Dereference
			}
			var ref []byte
			for _, jobs := range []int{1, 2, 4, 1} {
				opts.Jobs = jobs
				got := writeFile(t, f, es, opts)
				if ref == nil {
					ref = got
					continue
				}
				if !bytes.Equal(ref, got) {
					t.Fatalf("jobs=%d: %d bytes differ from jobs=1 (%d bytes)", jobs, len(got), len(ref))
				}
			}
			opts.Jobs = 3
			if got := writeFile(t, f, es2, opts); !bytes.Equal(ref, got) {
				t.Fatal("a copy of the tree elsewhere gives different bytes")
			}
		})
	}
}

func TestGzipHeader(t *testing.T) {
	t.Parallel()
	b := writeFile(t, TarGz, []Entry{{Path: "a", Data: []byte("x")}}, Options{})
	if b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("not gzip: % x", b[:4])
	}
	if flg := b[3]; flg != 0 {
		t.Errorf("gzip FLG = %#x, want 0 (no name, comment or extra)", flg)
	}
	if mt := binary.LittleEndian.Uint32(b[4:8]); mt != 0 {
		t.Errorf("gzip MTIME = %d, want 0", mt)
	}
}

func run(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// checkExtracted compares an extracted tree with the entries it came from.
func checkExtracted(t *testing.T, dir string, es []Entry, symlinks, modes bool) {
	t.Helper()
	for _, e := range es {
		full := filepath.Join(dir, filepath.FromSlash(e.Path))
		info, err := os.Lstat(full)
		if err != nil {
			t.Errorf("%s: %v", e.Path, err)
			continue
		}
		switch {
		case e.IsDir():
			if !info.IsDir() {
				t.Errorf("%s: not a directory", e.Path)
			}
		case e.IsSymlink() && symlinks:
			target, err := os.Readlink(full)
			if err != nil || target != e.Linkname {
				t.Errorf("%s: link to %q (%v), want %q", e.Path, target, err, e.Linkname)
			}
		default:
			got, err := os.ReadFile(full)
			if err != nil {
				t.Errorf("%s: %v", e.Path, err)
				continue
			}
			want, _ := os.ReadFile(e.Source)
			if !bytes.Equal(got, want) {
				t.Errorf("%s: content differs", e.Path)
			}
			if modes && !e.IsSymlink() && info.Mode().Perm()&0o111 != e.Mode.Perm()&0o111 {
				t.Errorf("%s: mode %v, want exec bits of %v", e.Path, info.Mode(), e.Mode)
			}
		}
	}
}

func TestTarGzSystemTar(t *testing.T) {
	t.Parallel()
	tarBin := testutil.Tool(t, "tar")
	root := makeTree(t)
	es := treeEntries(t, root)
	dir := t.TempDir()
	out := filepath.Join(dir, "env.tar.gz")
	must(t, Write(context.Background(), out, TarGz, es, Options{Jobs: 2}))

	listing := run(t, dir, tarBin, "--numeric-owner", "--full-time", "-tvzf", out)
	lines := strings.Split(strings.TrimSpace(listing), "\n")
	if len(lines) != len(es) {
		t.Fatalf("tar lists %d members, want %d:\n%s", len(lines), len(es), listing)
	}
	for i, l := range lines {
		e := es[i]
		f := strings.Fields(l)
		if f[1] != "0/0" {
			t.Errorf("%s: owner %s, want 0/0", e.Path, f[1])
		}
		if f[3] != "1980-01-01" || f[4] != "00:00:00" {
			t.Errorf("%s: time %s %s", e.Path, f[3], f[4])
		}
		wantMode := map[bool]string{true: "-rwxr-xr-x", false: "-rw-r--r--"}[e.Mode&0o111 != 0]
		switch {
		case e.IsDir():
			wantMode = "drwxr-xr-x"
		case e.IsSymlink():
			wantMode = "lrwxrwxrwx"
		}
		if f[0] != wantMode {
			t.Errorf("%s: mode %s, want %s", e.Path, f[0], wantMode)
		}
		if !strings.Contains(l, " "+e.Path) {
			t.Errorf("line %d = %q, want member %s", i, l, e.Path)
		}
	}
	x := filepath.Join(dir, "x")
	must(t, os.Mkdir(x, 0o755))
	run(t, x, tarBin, "xzf", out)
	checkExtracted(t, x, es, true, true)
	if _, err := os.Stat(filepath.Join(x, "empty")); err != nil {
		t.Error("empty directory not extracted")
	}
}

func TestTarZstSystem(t *testing.T) {
	t.Parallel()
	zstdBin := testutil.Tool(t, "zstd")
	tarBin := testutil.Tool(t, "tar")
	root := makeTree(t)
	es := treeEntries(t, root)
	dir := t.TempDir()
	out := filepath.Join(dir, "env.tar.zst")
	must(t, Write(context.Background(), out, TarZst, es, Options{Jobs: 2, Level: 19}))
	x := filepath.Join(dir, "x")
	must(t, os.Mkdir(x, 0o755))
	cmd := exec.Command("sh", "-c", fmt.Sprintf("%q -dc %q | %q xf -", zstdBin, out, tarBin))
	cmd.Dir = x
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("zstd -d | tar x: %v\n%s", err, b)
	}
	checkExtracted(t, x, es, true, true)
}

const zipProbe = `
import sys, zipfile, json
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
out = []
for i in z.infolist():
    out.append({"name": i.filename, "mode": i.external_attr >> 16, "date": list(i.date_time),
                "extra": i.extra.hex(), "create_system": i.create_system, "method": i.compress_type})
z.extractall(sys.argv[2])
print(json.dumps(out, ensure_ascii=False))
`

func TestZipPython(t *testing.T) {
	t.Parallel()
	py := testutil.Python(t, "3.11")
	root := makeTree(t)
	es := treeEntries(t, root)
	dir := t.TempDir()
	out := filepath.Join(dir, "app.zip")
	must(t, Write(context.Background(), out, Zip, es, Options{Jobs: 2, Symlinks: Dereference}))

	listing := run(t, dir, py, "-m", "zipfile", "-l", out)
	for _, e := range es {
		if !strings.Contains(listing, e.Path) {
			t.Errorf("python -m zipfile -l misses %s:\n%s", e.Path, listing)
		}
	}
	x := filepath.Join(dir, "x")
	res := run(t, dir, py, "-c", zipProbe, out, x)
	for _, want := range []string{`"create_system": 3`, `"date": [1980, 1, 1, 0, 0, 0]`} {
		if c := strings.Count(res, want); c != len(es) {
			t.Errorf("%s on %d members, want %d", want, c, len(es))
		}
	}
	if strings.Contains(res, `"extra": "0`) || strings.Count(res, `"extra": ""`) != len(es) {
		t.Errorf("members carry extra fields: %s", res)
	}
	// python keeps no modes on extract: read them from the listing.
	for _, e := range es {
		want := unixMode(e.Mode)
		if e.IsSymlink() {
			want = 0o100644
		}
		if !strings.Contains(res, fmt.Sprintf(`"name": %q, "mode": %d`, zipName(e), want)) {
			t.Errorf("%s: want mode %o in %s", e.Path, want, res)
		}
	}
	checkExtracted(t, x, es, false, false) // python sets no modes on extract
	data, _ := os.ReadFile(filepath.Join(x, "link"))
	if string(data) != "alpha\n" {
		t.Errorf("dereferenced link holds %q", data)
	}
}

func zipName(e Entry) string {
	if e.IsDir() {
		return e.Path + "/"
	}
	return e.Path
}

// TestZipLocalHeaders checks what python does not show: the local headers
// carry no extra fields and every member is deflated.
func TestZipLocalHeaders(t *testing.T) {
	t.Parallel()
	root := makeTree(t)
	b := writeFile(t, Zip, treeEntries(t, root), Options{Symlinks: Dereference, Jobs: 2})
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		off, err := f.DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		h := off - 30 - int64(len(f.Name))
		if h < 0 || !bytes.Equal(b[h:h+4], []byte("PK\x03\x04")) {
			t.Errorf("%s: local header not where a header without extra fields would be", f.Name)
			continue
		}
		if n := binary.LittleEndian.Uint16(b[h+28:]); n != 0 {
			t.Errorf("%s: local extra length %d", f.Name, n)
		}
		if len(f.Extra) != 0 {
			t.Errorf("%s: central extra %x", f.Name, f.Extra)
		}
		wantMethod := zip.Deflate
		if strings.HasSuffix(f.Name, "/") {
			wantMethod = zip.Store
		}
		if f.Method != wantMethod {
			t.Errorf("%s: method %d", f.Name, f.Method)
		}
	}
}

func TestZipSymlinkPolicies(t *testing.T) {
	t.Parallel()
	root := makeTree(t)
	es := treeEntries(t, root)
	out := filepath.Join(t.TempDir(), "a.zip")
	err := Write(context.Background(), out, Zip, es, Options{})
	if err == nil || !strings.Contains(err.Error(), "zip cannot hold symlinks; Spark would lose them") {
		t.Errorf("Keep: err = %v", err)
	}
	err = Write(context.Background(), out, Zip, es, Options{Symlinks: Refuse})
	if err == nil || !strings.Contains(err.Error(), "link") {
		t.Errorf("Refuse: err = %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused archive left %s behind", out)
	}
	// Refuse applies to tar as well.
	if err := Write(context.Background(), out+".tar", Tar, es, Options{Symlinks: Refuse}); err == nil {
		t.Error("tar with Refuse accepted a symlink")
	}
	// A link to a directory cannot be dereferenced member by member.
	must(t, os.Symlink("lib", filepath.Join(root, "libdir")))
	err = Write(context.Background(), out, Zip, treeEntries(t, root), Options{Symlinks: Dereference})
	if err == nil || !strings.Contains(err.Error(), "libdir") {
		t.Errorf("dir link: err = %v", err)
	}
}

func TestWriteKeepsOldFileOnError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "a.tar.gz")
	must(t, os.WriteFile(out, []byte("old"), 0o644))
	es := []Entry{{Path: "a", Data: []byte("x")}, {Path: "b", Source: filepath.Join(dir, "missing")}}
	if err := Write(context.Background(), out, TarGz, es, Options{}); err == nil {
		t.Fatal("missing source accepted")
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("stop"))
	if err := Write(ctx, out, Zip, es[:1], Options{Jobs: 2}); err == nil || !strings.Contains(err.Error(), "stop") {
		t.Fatalf("cancelled write: err = %v", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "old" {
		t.Errorf("failed writes replaced the file: %q", b)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 1 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestPrepareRejects(t *testing.T) {
	t.Parallel()
	for name, es := range map[string][]Entry{
		"dup":      {{Path: "a", Data: nil}, {Path: "a", Data: []byte("x")}},
		"dotdot":   {{Path: "../a"}},
		"abs":      {{Path: "/a"}},
		"unclean":  {{Path: "a//b"}},
		"badutf8":  {{Path: "a\xff"}},
		"nolink":   {{Path: "l", Mode: fs.ModeSymlink}},
		"device":   {{Path: "d", Mode: fs.ModeDevice}},
		"trailing": {{Path: "a/"}},
	} {
		if err := WriteTar(&bytes.Buffer{}, es, Options{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for _, l := range []int{-1, 10} {
		if err := Encode(context.Background(), &bytes.Buffer{}, TarGz, nil, Options{Level: l}); err == nil {
			t.Errorf("gzip level %d accepted", l)
		}
		if err := Encode(context.Background(), &bytes.Buffer{}, Zip, nil, Options{Level: l}); err == nil {
			t.Errorf("zip level %d accepted", l)
		}
	}
}

func TestFormatOf(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]Format{"a.zip": Zip, "A.TAR.GZ": TarGz, "x.tgz": TarGz, "e.tar.zst": TarZst, "e.tar": Tar} {
		if got, err := FormatOf(name); err != nil || got != want {
			t.Errorf("FormatOf(%s) = %v, %v", name, got, err)
		}
	}
	if _, err := FormatOf("a.rar"); err == nil {
		t.Error("rar accepted")
	}
}

// TestEntriesSortedInOutput checks that unsorted input is written sorted.
func TestEntriesSortedInOutput(t *testing.T) {
	t.Parallel()
	es := []Entry{{Path: "b", Data: []byte("2")}, {Path: "a", Data: []byte("1")}, {Path: "a-b", Data: nil}}
	var a, b bytes.Buffer
	must(t, WriteZip(&a, es, Options{Symlinks: Refuse}))
	sort.Slice(es, func(i, j int) bool { return es[i].Path < es[j].Path })
	must(t, WriteZip(&b, es, Options{Symlinks: Refuse}))
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("order of input changes the zip")
	}
}

// TestDeterministicLarge pushes enough data through the compressors for
// many blocks and encoder windows to be in flight at once.
func TestDeterministicLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large input")
	}
	t.Parallel()
	var es []Entry
	for i := range 6 {
		es = append(es, Entry{Path: fmt.Sprintf("f%d", i), Data: genData(1<<20+i*1000, uint64(i))})
	}
	// Above zipBufferLimit: streamed by the zip writer itself.
	es = append(es, Entry{Path: "huge", Data: genData(zipBufferLimit+1, 99)})
	for _, f := range []Format{TarGz, TarZst, Zip} {
		var ref []byte
		for _, jobs := range []int{1, 2, 8} {
			var buf bytes.Buffer
			if err := Encode(context.Background(), &buf, f, es, Options{Jobs: jobs, Symlinks: Refuse}); err != nil {
				t.Fatal(err)
			}
			if ref == nil {
				ref = buf.Bytes()
			} else if !bytes.Equal(ref, buf.Bytes()) {
				t.Errorf("%s: jobs=%d differs from jobs=1", f, jobs)
			}
		}
	}
}

// TestTarHeaders reads the tar back with the standard reader: owners are
// 0 with no names, times fixed, and PAX records carry only long names.
func TestTarHeaders(t *testing.T) {
	t.Parallel()
	root := makeTree(t)
	b := writeFile(t, Tar, treeEntries(t, root), Options{})
	tr := tar.NewReader(bytes.NewReader(b))
	sawPAX := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d/%d %q/%q", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !h.ModTime.Equal(DefaultMTime) || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s: times %v %v %v", h.Name, h.ModTime, h.AccessTime, h.ChangeTime)
		}
		for k := range h.PAXRecords {
			sawPAX = true
			if k != "path" && k != "linkpath" {
				t.Errorf("%s: PAX record %s", h.Name, k)
			}
		}
	}
	if !sawPAX {
		t.Error("no PAX records: the long names were not exercised")
	}
}
