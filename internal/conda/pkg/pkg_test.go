package pkg

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparkenv/sparkenv/internal/testutil"
)

var formats = []Format{Conda, TarBz2}

// build writes a package tree named name and packs it in format.
func build(t testing.TB, name string, f Format) (src, archive string) {
	t.Helper()
	dir := t.TempDir()
	src = filepath.Join(dir, "src")
	makeTree(t, src, name)
	archive = filepath.Join(dir, name+"-1.0-h0_0"+f.Ext())
	if err := Write(context.Background(), src, archive, f, WriteOptions{ZstdLevel: 3, Bzip2Level: 1}); err != nil {
		t.Fatal(err)
	}
	return src, archive
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			src, archive := build(t, "demo", f)
			dest := filepath.Join(t.TempDir(), "out")
			if err := Extract(context.Background(), archive, dest, ExtractOptions{}); err != nil {
				t.Fatal(err)
			}
			diffTrees(t, treeOf(t, src), treeOf(t, dest))

			fromArchive, err := ReadInfo(archive)
			if err != nil {
				t.Fatal(err)
			}
			fromDir, err := ReadInfoDir(dest)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(fromDir, fromArchive); d != "" {
				t.Errorf("ReadInfo and ReadInfoDir differ (-dir +archive):\n%s", d)
			}
			if fromArchive.Index.Name != "demo" || fromArchive.Index.Timestamp != 1700000000000 || fromArchive.Legacy {
				t.Errorf("index: %+v", fromArchive.Index)
			}
			if len(fromArchive.Paths) != 7 {
				t.Errorf("want 7 paths, got %d: %+v", len(fromArchive.Paths), fromArchive.Paths)
			}
			for _, e := range fromArchive.Paths {
				if e.PathType == PathHardlink && e.SHA256 != fileSHA(t, filepath.Join(dest, e.Path)) {
					t.Errorf("%s: sha256 in paths.json does not match the file", e.Path)
				}
			}
			if fromArchive.RunExports == nil || fromArchive.RunExports.Weak[0] != "demo >=1.0,<2" {
				t.Errorf("run_exports: %+v", fromArchive.RunExports)
			}
			// Times come from the archive.
			st, err := os.Stat(filepath.Join(dest, "bin", "demo"))
			if err != nil || !st.ModTime().Equal(time.Unix(0, 0)) {
				t.Errorf("mtime of bin/demo: %v %v", st.ModTime(), err)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			var sums []string
			for i := 0; i < 2; i++ {
				dir := t.TempDir()
				src := filepath.Join(dir, "src")
				makeTree(t, src, "det")
				// Different times and permissions must not show.
				if i == 1 {
					os.Chtimes(filepath.Join(src, "share/det/a.txt"), time.Now(), time.Now().Add(-time.Hour))
					os.Chmod(filepath.Join(src, "share/det/a.txt"), 0o600)
					os.Chmod(filepath.Join(src, "bin/det"), 0o700)
				}
				out := filepath.Join(dir, "det-1.0-h0_0"+f.Ext())
				if err := Write(context.Background(), src, out, f, WriteOptions{ZstdLevel: 19}); err != nil {
					t.Fatal(err)
				}
				sums = append(sums, fileSHA(t, out))
			}
			if sums[0] != sums[1] {
				t.Errorf("two writes differ: %s %s", sums[0], sums[1])
			}
		})
	}
}

func TestWriteChecksName(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	makeTree(t, filepath.Join(dir, "src"), "n")
	err := Write(context.Background(), filepath.Join(dir, "src"), filepath.Join(dir, "n-1-0.tar.bz2"), Conda, WriteOptions{})
	if err == nil {
		t.Fatal("a .conda written to a .tar.bz2 name was accepted")
	}
	os.Remove(filepath.Join(dir, "src", "info", "index.json"))
	err = Write(context.Background(), filepath.Join(dir, "src"), filepath.Join(dir, "n-1-0.conda"), Conda, WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), "index.json") {
		t.Fatalf("a tree without index.json: %v", err)
	}
}

func TestExtractDestination(t *testing.T) {
	t.Parallel()
	_, archive := build(t, "dst", Conda)
	dir := t.TempDir()
	// An empty directory is fine.
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	if err := Extract(context.Background(), archive, empty, ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	// A non-empty one is not, and is left alone.
	if err := Extract(context.Background(), archive, empty, ExtractOptions{}); err == nil {
		t.Fatal("extracting over a non-empty directory succeeded")
	}
	if _, err := os.Stat(filepath.Join(empty, "info", "index.json")); err != nil {
		t.Fatal(err)
	}
	assertNoTemp(t, dir)
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestExtractCancelled(t *testing.T) {
	t.Parallel()
	_, archive := build(t, "cancel", TarBz2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	if err := Extract(ctx, archive, filepath.Join(dir, "x"), ExtractOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	assertNoTemp(t, dir)
}

func TestLegacyPackage(t *testing.T) {
	t.Parallel()
	legacy := LegacyPlaceholder()
	if len(legacy) != 32 {
		t.Fatalf("legacy placeholder %q has %d characters", legacy, len(legacy))
	}
	modern := "/home/builder/env/" + strings.Repeat("_placehold", 24)
	entries := []rawEntry{
		indexEntry("old"),
		{hdr: tar.Header{Name: "info/files", Typeflag: tar.TypeReg},
			data: "bin/old\nlib/libold.so\nlib/libold.so.1\nshare/old/my file.txt\netc/old.conf\n"},
		{hdr: tar.Header{Name: "info/has_prefix", Typeflag: tar.TypeReg},
			data: "bin/old\n" + modern + " binary lib/libold.so.1\n'" + modern + "' text \"share/old/my file.txt\"\n"},
		{hdr: tar.Header{Name: "info/no_link", Typeflag: tar.TypeReg}, data: "etc/old.conf\n"},
		{hdr: tar.Header{Name: "bin/old", Typeflag: tar.TypeReg, Mode: 0o755}, data: "#!" + legacy + "/bin/sh\n"},
		{hdr: tar.Header{Name: "lib/libold.so", Typeflag: tar.TypeSymlink, Linkname: "libold.so.1"}},
		{hdr: tar.Header{Name: "lib/libold.so.1", Typeflag: tar.TypeReg}, data: "\x7fELF"},
		{hdr: tar.Header{Name: "share/old/my file.txt", Typeflag: tar.TypeReg}, data: modern},
		{hdr: tar.Header{Name: "etc/old.conf", Typeflag: tar.TypeReg}, data: "conf"},
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "old-1-0.tar.bz2")
	writeRawTarBz2(t, archive, entries)
	want := []PathsEntry{
		{Path: "bin/old", PathType: PathHardlink, FileMode: FileModeText, PrefixPlaceholder: legacy, Size: int64(len(entries[4].data))},
		{Path: "etc/old.conf", PathType: PathHardlink, NoLink: true, Size: 4},
		{Path: "lib/libold.so", PathType: PathSoftlink},
		{Path: "lib/libold.so.1", PathType: PathHardlink, FileMode: FileModeBinary, PrefixPlaceholder: modern, Size: 4},
		{Path: "share/old/my file.txt", PathType: PathHardlink, FileMode: FileModeText, PrefixPlaceholder: modern, Size: int64(len(modern))},
	}
	info, err := ReadInfo(archive)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Legacy {
		t.Error("Legacy is false")
	}
	if d := cmp.Diff(want, info.Paths); d != "" {
		t.Errorf("paths from archive (-want +got):\n%s", d)
	}
	dest := filepath.Join(dir, "x")
	if err := Extract(context.Background(), archive, dest, ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	fromDir, err := ReadInfoDir(dest)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, fromDir.Paths); d != "" {
		t.Errorf("paths from directory (-want +got):\n%s", d)
	}
}

func TestHasPrefixLines(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"a b", "ph text a//b", "ph text ./a", "ph weird path", "'unterminated x y", "ph text /abs", "ph text ../up", "a b c d"} {
		if _, _, _, err := ParseHasPrefixLine(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestInfoNotLeading reads a .tar.bz2 whose info/ comes after the payload.
func TestInfoNotLeading(t *testing.T) {
	t.Parallel()
	archive := filepath.Join(t.TempDir(), "late-1-0.tar.bz2")
	writeRawTarBz2(t, archive, []rawEntry{
		{hdr: tar.Header{Name: "bin/late", Typeflag: tar.TypeReg}, data: "x"},
		indexEntry("late"),
		{hdr: tar.Header{Name: "info/paths.json", Typeflag: tar.TypeReg},
			data: `{"paths": [{"_path": "bin/late", "sha256": "` + sha("x") + `", "size_in_bytes": 1}], "paths_version": 1}`},
		{hdr: tar.Header{Name: "info/link.json", Typeflag: tar.TypeReg},
			data: `{"noarch": {"type": "python", "entry_points": ["late = late.cli:main"]}, "package_metadata_version": 1}`},
	})
	info, err := ReadInfo(archive)
	if err != nil {
		t.Fatal(err)
	}
	if info.Link == nil || info.Link.Noarch.Type != "python" || info.Link.Noarch.EntryPoints[0] != "late = late.cli:main" {
		t.Errorf("link.json: %+v", info.Link)
	}
	if len(info.Paths) != 1 || info.Paths[0].PathType != PathHardlink || info.Paths[0].Size != 1 {
		t.Errorf("paths: %+v", info.Paths)
	}
}

func TestCondaStructure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	info := []rawEntry{indexEntry("s"), {hdr: tar.Header{Name: "info/paths.json", Typeflag: tar.TypeReg}, data: `{"paths": [], "paths_version": 1}`}}
	tarInfo := string(zst(t, rawTar(t, info)))
	tarPkg := string(zst(t, rawTar(t, nil)))
	cases := map[string]struct {
		members [][2]string
		want    string
	}{
		"no-metadata": {[][2]string{{"pkg-s-1-0.tar.zst", tarPkg}, {"info-s-1-0.tar.zst", tarInfo}}, "metadata.json is missing"},
		"version-1":   {[][2]string{{"metadata.json", `{"conda_pkg_format_version": 1}`}, {"pkg-s-1-0.tar.zst", tarPkg}, {"info-s-1-0.tar.zst", tarInfo}}, "conda_pkg_format_version 1"},
		"renamed":     {[][2]string{{"metadata.json", metadataJSON}, {"pkg-t-1-0.tar.zst", tarPkg}, {"info-t-1-0.tar.zst", tarInfo}}, "info-s-1-0.tar.zst is missing"},
		"no-pkg":      {[][2]string{{"metadata.json", metadataJSON}, {"info-s-1-0.tar.zst", tarInfo}}, "pkg-s-1-0.tar.zst is missing"},
		"bad-zstd":    {[][2]string{{"metadata.json", metadataJSON}, {"pkg-s-1-0.tar.zst", "garbage"}, {"info-s-1-0.tar.zst", "garbage"}}, "info-s-1-0.tar.zst"},
	}
	for name, c := range cases {
		sub := filepath.Join(dir, name)
		os.Mkdir(sub, 0o755)
		archive := filepath.Join(sub, "s-1-0.conda")
		writeRawConda(t, archive, c.members)
		_, err := ReadInfo(archive)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), archive) {
			t.Errorf("%s: ReadInfo: want an error naming %s and %q, got %v", name, archive, c.want, err)
		}
		if err := Extract(context.Background(), archive, filepath.Join(sub, "x"), ExtractOptions{}); err == nil {
			t.Errorf("%s: Extract succeeded", name)
		}
		assertNoTemp(t, sub)
	}
}

func TestMaliciousArchives(t *testing.T) {
	t.Parallel()
	reg := func(name, data string) rawEntry {
		return rawEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg}, data: data}
	}
	link := func(name, target string) rawEntry {
		return rawEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target}}
	}
	hard := func(name, target string) rawEntry {
		return rawEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target}}
	}
	cases := []struct {
		name    string
		entries []rawEntry
		opts    ExtractOptions
		want    string
	}{
		{"absolute", []rawEntry{reg("/etc/evil", "x")}, ExtractOptions{}, "absolute path"},
		{"dotdot", []rawEntry{reg("../x", "x")}, ExtractOptions{}, "contains .."},
		{"inner-dotdot", []rawEntry{reg("lib/../../x", "x")}, ExtractOptions{}, "contains .."},
		{"symlink-abs", []rawEntry{link("lib/evil", "/etc/passwd")}, ExtractOptions{}, "absolute path"},
		{"symlink-up", []rawEntry{link("lib/evil", "../../etc")}, ExtractOptions{}, "leads outside"},
		{"symlink-chain", []rawEntry{link("a", "."), link("lib/b", "../a/../x")}, ExtractOptions{}, "leads outside"},
		{"write-through-symlink", []rawEntry{link("lib", "share"), reg("lib/x", "x")}, ExtractOptions{}, "symlink; refusing"},
		{"hardlink-abs", []rawEntry{hard("lib/evil", "/etc/passwd")}, ExtractOptions{}, "leads outside"},
		{"hardlink-up", []rawEntry{hard("lib/evil", "../outside")}, ExtractOptions{}, "leads outside"},
		{"hardlink-to-symlink", []rawEntry{link("lib/s", "x"), hard("lib/evil", "lib/s")}, ExtractOptions{}, "not an earlier regular file"},
		{"device", []rawEntry{{hdr: tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}}, ExtractOptions{}, "device"},
		{"fifo", []rawEntry{{hdr: tar.Header{Name: "fifo", Typeflag: tar.TypeFifo}}}, ExtractOptions{}, "fifo"},
		{"too-big", []rawEntry{reg("big", strings.Repeat("x", 2000))}, ExtractOptions{MaxBytes: 1000}, "more than 1000 bytes"},
		{"too-many", []rawEntry{reg("a", ""), reg("b", ""), reg("c", "")}, ExtractOptions{MaxMembers: 3}, "more than 3 members"},
	}
	for _, c := range cases {
		for _, f := range formats {
			t.Run(c.name+"/"+f.String(), func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				archive := filepath.Join(dir, "evil-1-0"+f.Ext())
				info := []rawEntry{indexEntry("evil")}
				if f == Conda {
					condaOf(t, archive, "evil-1-0", info, c.entries)
				} else {
					writeRawTarBz2(t, archive, append(info, c.entries...))
				}
				dest := filepath.Join(dir, "dest")
				err := Extract(context.Background(), archive, dest, c.opts)
				if err == nil {
					t.Fatal("extraction succeeded")
				}
				if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), archive) {
					t.Errorf("want an ErrUnsafe naming the archive and %q, got: %v", c.want, err)
				}
				if _, err := os.Lstat(dest); !os.IsNotExist(err) {
					t.Errorf("destination left behind: %v", err)
				}
				assertNoTemp(t, dir)
				if _, err := os.Lstat(filepath.Join(dir, "outside")); !os.IsNotExist(err) {
					t.Error("a file was written outside")
				}
			})
		}
	}
}

// TestCphReadsOurs extracts our archives with conda-package-handling.
func TestCphReadsOurs(t *testing.T) {
	t.Parallel()
	cph := testutil.Tool(t, "cph")
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			src, archive := build(t, "cphread", f)
			dest := filepath.Join(t.TempDir(), "out")
			out, err := exec.Command(cph, "extract", "--dest", dest, archive).CombinedOutput()
			if err != nil {
				t.Fatalf("cph extract: %v\n%s", err, out)
			}
			diffTrees(t, treeOf(t, src), treeOf(t, dest))
		})
	}
}

// TestWeReadCph reads archives written by conda-package-handling.
func TestWeReadCph(t *testing.T) {
	t.Parallel()
	cph := testutil.Tool(t, "cph")
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			makeTree(t, src, "fromcph")
			name := "fromcph-1.0-h0_0" + f.Ext()
			cmd := exec.Command(cph, "create", src, name, "--out-folder", dir)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("cph create: %v\n%s", err, out)
			}
			archive := filepath.Join(dir, name)
			dest := filepath.Join(dir, "out")
			if err := Extract(context.Background(), archive, dest, ExtractOptions{}); err != nil {
				t.Fatal(err)
			}
			diffTrees(t, treeOf(t, src), treeOf(t, dest))
			info, err := ReadInfo(archive)
			if err != nil {
				t.Fatal(err)
			}
			if info.Index.Name != "fromcph" || len(info.Paths) != 7 {
				t.Errorf("info: %+v", info)
			}
		})
	}
}

// TestStreamingReadsOurs lists our archives with conda-package-streaming.
func TestStreamingReadsOurs(t *testing.T) {
	t.Parallel()
	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import conda_package_streaming").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3-conda-package-streaming is not installed (make deps installs it): %v", err)
		}
		t.Skip("python3-conda-package-streaming is not installed; run `make deps`")
	}
	const script = `
import sys
from conda_package_streaming.package_streaming import stream_conda_component, CondaComponent
from conda_package_streaming import package_streaming
path = sys.argv[1]
names = []
if path.endswith(".conda"):
    comps = [CondaComponent.pkg, CondaComponent.info]
    for comp in comps:
        with open(path, "rb") as f:
            for tar, member in stream_conda_component(path, f, comp):
                names.append(member.name)
                if member.isfile():
                    tar.extractfile(member).read()
else:
    with open(path, "rb") as f:
        for tar, member in package_streaming.stream_conda_component(path, f):
            names.append(member.name)
print("\n".join(sorted(names)))
`
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			src, archive := build(t, "stream", f)
			out, err := exec.Command(python, "-c", script, archive).CombinedOutput()
			if err != nil {
				t.Fatalf("conda_package_streaming: %v\n%s", err, out)
			}
			var want []string
			for p, kind := range treeOf(t, src) {
				if kind != "dir" || p == filepath.FromSlash("var/empty") {
					want = append(want, filepath.ToSlash(p))
				}
			}
			got := strings.Fields(strings.TrimSpace(string(out)))
			sortStrings(want)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("members (-want +got):\n%s", d)
			}
		})
	}
}

// TestBinaryHasNoLegacyPlaceholder: an installer patching files that hold
// the legacy placeholder must not find it in its own executable.
func TestBinaryHasNoLegacyPlaceholder(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(LegacyPlaceholder())) {
		t.Fatalf("%s contains the legacy placeholder", exe)
	}
}

// TestGlobalHeader: a PAX global header (as git archive writes) is not a
// member.
func TestGlobalHeader(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	archive := filepath.Join(dir, "g-1-0.tar.bz2")
	writeRawTarBz2(t, archive, []rawEntry{
		{hdr: tar.Header{Name: "pax_global_header", Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "x"}}},
		indexEntry("g"),
		{hdr: tar.Header{Name: "info/paths.json", Typeflag: tar.TypeReg}, data: `{"paths": [], "paths_version": 1}`},
	})
	if err := Extract(context.Background(), archive, filepath.Join(dir, "x"), ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x", "pax_global_header")); err == nil {
		t.Error("the global header was written as a file")
	}
}

func TestLenientInfoJSON(t *testing.T) {
	t.Parallel()
	info, err := parseInfo(map[string][]byte{
		"info/index.json":       []byte(`{"name": "l", "version": 1.5, "build": "0", "build_number": "2", "depends": null, "noarch": true}`),
		"info/paths.json":       []byte(`{"paths": [{"_path": "a", "prefix_placeholder": "/ph"}, {"_path": "b", "path_type": "softlink"}], "paths_version": 1}`),
		"info/link.json":        []byte(`{"noarch": "python", "package_metadata_version": 1}`),
		"info/run_exports.json": []byte(`["l >=1.5"]`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if info.Index.Version != "1.5" || info.Index.BuildNumber != 2 || info.Index.Noarch != "generic" || info.Index.Depends == nil {
		t.Errorf("index: %+v", info.Index)
	}
	want := []PathsEntry{
		{Path: "a", PathType: PathHardlink, FileMode: FileModeText, PrefixPlaceholder: "/ph"},
		{Path: "b", PathType: PathSoftlink},
	}
	if d := cmp.Diff(want, info.Paths); d != "" {
		t.Errorf("paths (-want +got):\n%s", d)
	}
	if info.Link.Noarch.Type != "python" || info.RunExports.Weak[0] != "l >=1.5" {
		t.Errorf("link %+v, run_exports %+v", info.Link, info.RunExports)
	}
	for name, doc := range map[string]string{
		"info/paths.json": `{"paths": [], "paths_version": 2}`,
		"info/link.json":  `{"noarch": 3}`,
	} {
		files := map[string][]byte{"info/index.json": []byte(`{"name": "l", "version": "1"}`), name: []byte(doc)}
		if _, err := parseInfo(files); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s %s: want an error naming the file, got %v", name, doc, err)
		}
	}
}
