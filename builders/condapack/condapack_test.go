package condapack

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/condaenv"
	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/execx"
	"github.com/sparkenv/sparkenv/internal/testutil"
	"github.com/sparkenv/sparkenv/internal/testutil/condatest"
	"github.com/sparkenv/sparkenv/internal/wheel/wheeltest"
)

// cleanups run after all tests and benchmarks.
var cleanups []func()

func TestMain(m *testing.M) {
	code := m.Run()
	condatest.Cleanup()
	for _, f := range cleanups {
		f()
	}
	os.Exit(code)
}

// lockedEnv is the quickstart environment these tests pack.
func lockedEnv(t *testing.T) (*lock.Resolved, string) {
	t.Helper()
	return condatest.Locked(t, "etl", "/opt/conda", "python 3.11.*", "wordcount", "prefixbin", "prefixtext"), condatest.PkgsDir(t)
}

func request(t *testing.T, res *lock.Resolved, pkgs string, cfg *Config, jobs int) *builders.Request {
	t.Helper()
	return &builders.Request{
		Address: "target.conda_pack.etl", Name: "etl", Config: cfg,
		Inputs: []builders.Input{condatest.Input(t, res)},
		OutDir: t.TempDir(), TempDir: t.TempDir(), Log: io.Discard,
		Runner:          &execx.Runner{Env: os.Environ()},
		PackageCacheDir: pkgs, Jobs: jobs,
	}
}

func build(t *testing.T, cfg *Config, jobs int) (string, map[string]string) {
	t.Helper()
	res, pkgs := lockedEnv(t)
	req := request(t, res, pkgs, cfg, jobs)
	r, err := New().Build(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(req.OutDir, r.Metadata["main"]), r.Metadata
}

func untar(t *testing.T, archive, dir string, flags ...string) {
	t.Helper()
	tar := testutil.Tool(t, "tar")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{}, flags...), "-xf", archive, "-C", dir)
	if out, err := exec.Command(tar, args...).CombinedOutput(); err != nil {
		t.Fatalf("tar %v: %v\n%s", args, err, out)
	}
}

func run(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestTarGzReproducibleAcrossJobs(t *testing.T) {
	t.Parallel()
	var sums []string
	var md map[string]string
	for _, jobs := range []int{1, 4} {
		p, m := build(t, &Config{Environment: "environment.etl"}, jobs)
		sum, _, err := artifact.HashFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, sum)
		md = m
	}
	if sums[0] != sums[1] {
		t.Fatalf("-j 1 and -j 4 differ: %s %s", sums[0], sums[1])
	}
	want := map[string]string{"main": "etl.tar.gz", "format": "tar.gz", "python": "3.11", "platform": "linux-64",
		"alias": "environment", "interpreter": "bin/python"}
	for k, v := range want {
		if md[k] != v {
			t.Errorf("metadata %s = %q, want %q (all: %v)", k, md[k], v, md)
		}
	}
}

// TestBuildLogHasNoAuditWarnings: a freshly installed environment passes
// the audit, so a warning would be a false alarm.
func TestBuildLogHasNoAuditWarnings(t *testing.T) {
	t.Parallel()
	res, pkgs := lockedEnv(t)
	req := request(t, res, pkgs, &Config{Environment: "environment.etl", Format: "tar.zst", CompilePyc: new(bool)}, 2)
	var log strings.Builder
	req.Log = &log
	if _, err := New().Build(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "differs from what conda installed") || strings.Contains(log.String(), "is missing") {
		t.Fatalf("audit warnings on a fresh install:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "rewritten by bin/conda-unpack") {
		t.Fatalf("log:\n%s", log.String())
	}
}

func TestRelocatableArchive(t *testing.T) {
	t.Parallel()
	p, _ := build(t, &Config{Environment: "environment.etl"}, 2)
	dir := filepath.Join(t.TempDir(), "environment")
	untar(t, p, dir)
	// The interpreter works before conda-unpack, from where it was unpacked.
	got := run(t, filepath.Join(dir, "bin", "python"), "-c", "import sys, wordcount; print(sys.prefix)")
	if got != dir {
		t.Fatalf("sys.prefix = %q, want %q", got, dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, ManifestPath))
	if err != nil {
		t.Fatal(err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	modes := map[string]string{}
	for _, f := range m.Files {
		modes[f.Path] = f.Mode
	}
	if m.Prefix != PackPrefix || len(PackPrefix) != 255 {
		t.Fatalf("manifest prefix %q (%d bytes)", m.Prefix, len(m.Prefix))
	}
	for path, mode := range map[string]string{"bin/prefixbin": "binary", "bin/prefixtext-where": "text",
		"etc/prefixtext.conf": "text", "bin/textnorm": "text"} {
		if modes[path] != mode {
			t.Errorf("manifest: %s mode %q, want %q", path, modes[path], mode)
		}
	}
	for path := range modes {
		if strings.HasSuffix(path, ".pyc") {
			t.Errorf("manifest lists bytecode %s", path)
		}
	}
	// Before conda-unpack the binary holds the packing prefix.
	if got := run(t, filepath.Join(dir, "bin", "prefixbin")); got != PackPrefix+"/share/prefixbin/data" {
		t.Fatalf("prefixbin before conda-unpack: %q", got)
	}
	run(t, filepath.Join(dir, UnpackPath))
	if got := run(t, filepath.Join(dir, "bin", "prefixbin")); got != dir+"/share/prefixbin/data" {
		t.Fatalf("prefixbin after conda-unpack: %q", got)
	}
	if got := run(t, filepath.Join(dir, "bin", "prefixbin"), "--cat"); got != "prefixbin data" {
		t.Fatalf("prefixbin --cat: %q", got)
	}
	if got := run(t, filepath.Join(dir, "bin", "prefixtext-where")); got != dir+"/share/prefixtext" {
		t.Fatalf("prefixtext-where: %q", got)
	}
	if got := run(t, filepath.Join(dir, "bin", "textnorm"), "Héllo", "WORLD"); got != "hello world" {
		t.Fatalf("textnorm entry point: %q", got)
	}
	// Moved again (to a path no longer than before), it unpacks again.
	moved := filepath.Join(filepath.Dir(dir), "env2")
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	run(t, filepath.Join(moved, UnpackPath))
	if got := run(t, filepath.Join(moved, "bin", "prefixbin")); got != moved+"/share/prefixbin/data" {
		t.Fatalf("prefixbin after a second move: %q", got)
	}
	conf, _ := os.ReadFile(filepath.Join(moved, "etc", "prefixtext.conf"))
	if strings.Contains(string(conf), "_placehold") || !strings.Contains(string(conf), moved+"/share/prefixtext") {
		t.Fatalf("prefixtext.conf after a second move:\n%s", conf)
	}
}

func TestDestPrefixShipsNoUnpack(t *testing.T) {
	t.Parallel()
	dest := filepath.Join(t.TempDir(), "srv", "env")
	p, md := build(t, &Config{Environment: "environment.etl", DestPrefix: dest, Format: "tar.zst"}, 2)
	if md["dest_prefix"] != dest || md["format"] != "tar.zst" || !strings.HasSuffix(p, ".tar.zst") {
		t.Fatalf("metadata %v", md)
	}
	untar(t, p, dest, "--zstd")
	for _, f := range []string{UnpackPath, ManifestPath} {
		if _, err := os.Stat(filepath.Join(dest, f)); err == nil {
			t.Errorf("%s shipped with dest_prefix", f)
		}
	}
	if got := run(t, filepath.Join(dest, "bin", "prefixbin")); got != dest+"/share/prefixbin/data" {
		t.Fatalf("prefixbin: %q", got)
	}
	if got := run(t, filepath.Join(dest, "bin", "textnorm"), "A  b"); got != "a b" {
		t.Fatalf("textnorm: %q", got)
	}
}

func TestZipSymlinks(t *testing.T) {
	t.Parallel()
	res, pkgs := lockedEnv(t)
	req := request(t, res, pkgs, &Config{Environment: "environment.etl", Format: "zip"}, 2)
	_, err := New().Build(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "symbolic link") || !strings.Contains(err.Error(), "bin/python") {
		t.Fatalf("zip with symlinks: err = %v, want a refusal naming a link", err)
	}
	p, md := build(t, &Config{Environment: "environment.etl", Format: "zip", Symlinks: "dereference"}, 2)
	if md["main"] != "etl.zip" {
		t.Fatalf("metadata %v", md)
	}
	zr, err := zip.OpenReader(p)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	found := false
	for _, f := range zr.File {
		if f.Mode()&os.ModeSymlink != 0 {
			t.Errorf("zip holds a symlink: %s", f.Name)
		}
		if f.Name == "bin/python" {
			found = f.Mode()&0o111 != 0 && f.UncompressedSize64 > 1000
		}
	}
	if !found {
		t.Fatal("bin/python is not an executable file in the zip")
	}
	// unzip (Info-ZIP keeps modes) gives a working interpreter.
	unzip := testutil.Tool(t, "unzip")
	dir := filepath.Join(t.TempDir(), "environment")
	if out, err := exec.Command(unzip, "-q", p, "-d", dir).CombinedOutput(); err != nil {
		t.Fatalf("unzip: %v\n%s", err, out)
	}
	if got := run(t, filepath.Join(dir, "bin", "python"), "-c", "import sys, tinyjson; print(sys.prefix)"); got != dir {
		t.Fatalf("sys.prefix %q", got)
	}
}

// Pip wheels of the environment are installed into the packed tree after
// the conda packages, and import from the unpacked archive.
func TestPipPackagesArePacked(t *testing.T) {
	t.Parallel()
	res, pkgs := lockedEnv(t)
	whl, err := wheeltest.Write(t.TempDir(), wheeltest.Spec{Name: "loud", Version: "1.0",
		Files: map[string]string{"loud/__init__.py": "def up(s):\n    return s.upper()\n"}})
	if err != nil {
		t.Fatal(err)
	}
	sum, size, err := artifact.HashFile(whl)
	if err != nil {
		t.Fatal(err)
	}
	withPip := *res
	env := *res.Environment
	env.Pip = []lock.Wheel{{Name: "loud", Version: "1.0", Filename: filepath.Base(whl), URL: "file://" + whl, SHA256: sum, Size: size}}
	withPip.Environment = &env
	req := request(t, &withPip, pkgs, &Config{Environment: "environment.etl"}, 1)
	r, err := New().Build(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "unpacked")
	untar(t, filepath.Join(req.OutDir, r.Metadata["main"]), dir)
	if got := run(t, filepath.Join(dir, "bin", "python"), "-c", "import loud; print(loud.up('ok'))"); got != "OK" {
		t.Fatalf("python printed %q", got)
	}
}

func TestValidate(t *testing.T) {
	b := New()
	bad := []*Config{
		{Format: "tar.bz2"}, {Level: 10}, {Format: "tar.zst", Level: 23}, {DestPrefix: "srv/env"},
		{DestPrefix: "/srv/../env"}, {Format: "zip", Symlinks: "keep"}, {Symlinks: "follow"},
		{Alias: "a#b"}, {Alias: "a/b"}, {Output: "x/y.tar.gz"}, {Output: "env.zip"}, {Format: "zip", Output: "env.tar.gz"},
	}
	for _, c := range bad {
		if err := b.Validate(c, "."); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	good := []*Config{{}, {Format: "tar.zst", Level: 19}, {Format: "zip", Symlinks: "dereference", Output: "e.ZIP"},
		{DestPrefix: "/srv/env", Alias: "env"}, {Output: "env.tgz"}}
	for _, c := range good {
		if err := b.Validate(c, "."); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func TestRelativeLink(t *testing.T) {
	e := relativeLink(archiveLink("lib/libfoo.so", PackPrefix+"/lib/libfoo.so.1"), PackPrefix)
	if e.Linkname != "libfoo.so.1" {
		t.Fatalf("linkname %q", e.Linkname)
	}
	e = relativeLink(archiveLink("bin/tool", PackPrefix+"/lib/exec/tool"), PackPrefix)
	if e.Linkname != "../lib/exec/tool" {
		t.Fatalf("linkname %q", e.Linkname)
	}
	e = relativeLink(archiveLink("bin/sh", "/bin/dash"), PackPrefix)
	if e.Linkname != "/bin/dash" {
		t.Fatalf("linkname %q", e.Linkname)
	}
}

// TestUnpackBinaryPatch runs the shipped conda-unpack on a hand-made
// environment: a binary file with the prefix inside C strings and a text
// file, checked byte for byte.
func TestUnpackBinaryPatch(t *testing.T) {
	py := testutil.Python(t, "3.11")
	root := filepath.Join(t.TempDir(), "e")
	old := padPrefix("/opt/x", 120)
	bin := []byte("\x7fELF\x00" + old + "/share/a\x00tail\x00" + old + ":" + old + "/b\x00end")
	files := map[string][]byte{
		"lib/data.bin":                        bin,
		"etc/conf.txt":                        []byte("p=" + old + "\nq=" + old + "/x\n"),
		"lib/mod.py":                          []byte("P = '" + old + "'\n"),
		"lib/__pycache__/mod.cpython-311.pyc": []byte("stale"),
		ManifestPath: mustJSON(t, Manifest{Version: 1, Prefix: old, Files: []ManifestFile{
			{Path: "etc/conf.txt", Mode: "text"}, {Path: "lib/data.bin", Mode: "binary"}, {Path: "lib/mod.py", Mode: "text"}}}),
		UnpackPath: unpackScript,
	}
	for p, b := range files {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// No bin/python here: the script falls back to python3 on PATH.
	cmd := exec.Command(filepath.Join(root, UnpackPath))
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(py)+":/usr/bin:/bin")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got, _ := os.ReadFile(filepath.Join(root, "lib/data.bin"))
	pad := func(n int) string { return strings.Repeat("\x00", n) }
	d := len(old) - len(root)
	want := "\x7fELF\x00" + root + "/share/a" + pad(d) + "\x00tail\x00" + root + ":" + root + "/b" + pad(2*d) + "\x00end"
	if !bytes.Equal(got, []byte(want)) {
		t.Fatalf("binary patch:\n got %q\nwant %q", got, want)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "etc/conf.txt")); string(got) != "p="+root+"\nq="+root+"/x\n" {
		t.Fatalf("text patch: %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, "lib/__pycache__/mod.cpython-311.pyc")); err == nil {
		t.Fatal("stale .pyc of a rewritten source was kept")
	}
	var m Manifest
	json.Unmarshal(mustRead(t, filepath.Join(root, ManifestPath)), &m)
	if m.Prefix != root {
		t.Fatalf("manifest prefix after unpack: %q", m.Prefix)
	}
	// A longer prefix cannot fit into the binary file: refused, nothing
	// changed.
	longer := filepath.Join(t.TempDir(), strings.Repeat("long", 40))
	if err := os.Rename(root, longer); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(filepath.Join(longer, UnpackPath))
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(py)+":/usr/bin:/bin")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "lib/data.bin") {
		t.Fatalf("longer prefix: err %v, output %s", err, out)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPycFromTheCache packs the environment with an empty .pyc cache and
// again with a full one: the second build compiles nothing, the archives
// are the same bytes, and they hold the .pyc files compileall gives the
// same installed tree.
func TestPycFromTheCache(t *testing.T) {
	t.Parallel()
	res, _ := lockedEnv(t)
	pkgs := t.TempDir() // its own package cache: the .pyc cache starts empty
	var sums, logs []string
	var archive string
	for i := 0; i < 2; i++ {
		req := request(t, res, pkgs, &Config{Environment: "environment.etl"}, 2)
		var log strings.Builder
		req.Log = &log
		r, err := New().Build(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		archive = filepath.Join(req.OutDir, r.Metadata["main"])
		sum, _, err := artifact.HashFile(archive)
		if err != nil {
			t.Fatal(err)
		}
		sums, logs = append(sums, sum), append(logs, log.String())
	}
	if !strings.Contains(logs[0], "compiling ") || strings.Contains(logs[1], "compiling ") {
		t.Fatalf("the first build should compile and the second not:\n%s\n----\n%s", logs[0], logs[1])
	}
	if sums[0] != sums[1] {
		t.Fatalf("archives with an empty and a full .pyc cache differ: %s %s", sums[0], sums[1])
	}
	var got []string
	for _, p := range strings.Split(run(t, testutil.Tool(t, "tar"), "-tzf", archive), "\n") {
		if strings.HasSuffix(p, ".pyc") {
			got = append(got, strings.TrimPrefix(p, "./"))
		}
	}
	// The oracle: the same install compiled by compileall.
	oracle := request(t, res, pkgs, &Config{Environment: "environment.etl"}, 2)
	stage := filepath.Join(t.TempDir(), "env")
	if _, err := condaenv.Stage(context.Background(), oracle, res, stage, PackPrefix); err != nil {
		t.Fatal(err)
	}
	if done, err := condaenv.CompilePyc(context.Background(), oracle, res.Environment, stage, PackPrefix); err != nil || !done {
		t.Fatalf("compileall: %v %v", done, err)
	}
	var want []string
	filepath.WalkDir(stage, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".pyc") {
			rel, _ := filepath.Rel(stage, p)
			want = append(want, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(got)
	sort.Strings(want)
	if len(want) == 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("archive has %d .pyc files, compileall %d:\n%s\n----\n%s", len(got), len(want), strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
