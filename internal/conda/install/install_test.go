package install

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sparkenv/sparkenv/internal/testutil"
)

func run(t *testing.T, argv ...string) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

func fileSum(t *testing.T, p string) (string, int64) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), int64(len(b))
}

// noLeftovers fails when anything but want is in dir (temporary install
// directories included).
func noLeftovers(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%s holds %v, want %v", dir, got, want)
	}
}

func TestTextPlaceholder(t *testing.T) {
	t.Parallel()
	ph := placeholder255()
	pkgs := t.TempDir()
	p := makePkg(t, pkgs, pkgSpec{name: "hello", files: []fileSpec{
		{path: "bin/hello", exec: true, placeholder: ph,
			data: "#!/bin/sh\n# installed at " + ph + "\necho \"" + ph + "/share/hello\"\n"},
		{path: "etc/hello.conf", placeholder: ph, data: "a=" + ph + "\nb=" + ph + "/x\n"},
	}})

	out := t.TempDir()
	env := filepath.Join(out, "env")
	rep, err := Install(context.Background(), env, []Package{p}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := run(t, filepath.Join(env, "bin/hello")); got != env+"/share/hello\n" {
		t.Fatalf("bin/hello printed %q, want the prefix %q", got, env+"/share/hello")
	}
	if rep.Patched != 2 || rep.Files != 2 {
		t.Fatalf("report %+v, want 2 files, 2 patched", rep)
	}

	// A target prefix other than the staging directory.
	env2 := filepath.Join(out, "env2")
	if _, err := Install(context.Background(), env2, []Package{p}, Options{TargetPrefix: "/opt/conda"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(env2, "etc/hello.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "a=/opt/conda\nb=/opt/conda/x\n" {
		t.Fatalf("etc/hello.conf = %q", b)
	}
	fi, err := os.Stat(filepath.Join(env2, "bin/hello"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Fatalf("bin/hello mode %v, want 0755", fi.Mode())
	}
	m := readMeta(t, env2, "hello-1.0-h0_0")
	for _, pe := range m["paths_data"].(map[string]any)["paths"].([]any) {
		e := pe.(map[string]any)
		sum, size := fileSum(t, filepath.Join(env2, e["_path"].(string)))
		if e["sha256_in_prefix"] != sum || e["size_in_bytes"] != float64(size) {
			t.Errorf("%s: conda-meta says %v/%v, file is %s/%d", e["_path"], e["sha256_in_prefix"], e["size_in_bytes"], sum, size)
		}
		if e["prefix_placeholder"] != ph || e["file_mode"] != "text" {
			t.Errorf("%s: placeholder info %v %v", e["_path"], e["prefix_placeholder"], e["file_mode"])
		}
	}
}

const cProgram = `#include <stdio.h>
static const char where[] = "@PH@/share/data";
static const char other[] = "PATH=@PH@/bin:@PH@/sbin";
int main(void) {
	puts(where);
	puts(other);
	return 0;
}
`

func TestBinaryPlaceholder(t *testing.T) {
	t.Parallel()
	gcc := testutil.Tool(t, "gcc")
	ph := placeholder255()
	work := t.TempDir()
	src := filepath.Join(work, "prog.c")
	if err := os.WriteFile(src, []byte(strings.ReplaceAll(cProgram, "@PH@", ph)), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(work, "prog")
	run(t, gcc, "-O0", "-o", bin, src)
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(ph)) {
		t.Fatal("compiled program does not contain the placeholder")
	}
	pkgs := filepath.Join(work, "pkgs")
	p := makePkg(t, pkgs, pkgSpec{name: "prog", files: []fileSpec{
		{path: "bin/prog", exec: true, data: string(data), placeholder: ph, binary: true},
	}})

	for _, name := range []string{"a", "a-much-longer-prefix-name/with/more/levels"} {
		env := filepath.Join(work, "envs", name)
		rep, err := Install(context.Background(), env, []Package{p}, Options{AllowHardlinks: true})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Patched != 1 || rep.Linked != 0 {
			t.Fatalf("report %+v: a placeholder file must be patched, never linked", rep)
		}
		got := run(t, filepath.Join(env, "bin/prog"))
		want := env + "/share/data\nPATH=" + env + "/bin:" + env + "/sbin\n"
		if got != want {
			t.Fatalf("prefix %s: program printed %q, want %q", env, got, want)
		}
		fi, err := os.Stat(filepath.Join(env, "bin/prog"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != int64(len(data)) {
			t.Fatalf("patched binary is %d bytes, the packaged one %d", fi.Size(), len(data))
		}
	}

	// A prefix longer than the placeholder cannot be patched in.
	if err := os.Mkdir(filepath.Join(work, "long"), 0o755); err != nil {
		t.Fatal(err)
	}
	long := "/opt/" + strings.Repeat("x/", 150) + "env"
	_, err = Install(context.Background(), filepath.Join(work, "long", "env"), []Package{p}, Options{TargetPrefix: long})
	if err == nil {
		t.Fatal("install into a prefix longer than the binary placeholder succeeded")
	}
	for _, want := range []string{"prog-1.0-h0_0", "bin/prog", "longer than the binary placeholder"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	noLeftovers(t, filepath.Join(work, "long"))
}

func TestLegacyHasPrefix(t *testing.T) {
	t.Parallel()
	ph := legacyPlaceholderForTest()
	if len(ph) != 32 {
		t.Fatalf("legacy placeholder %q is not 32 characters", ph)
	}
	pkgs := t.TempDir()
	p := makePkg(t, pkgs, pkgSpec{name: "old", legacy: true, files: []fileSpec{
		{path: "bin/old-config", exec: true, placeholder: ph, data: "#!/bin/sh\necho " + ph + "/lib\n"},
		{path: "lib/libold.so", data: "plain"},
		{path: "lib/libold.so.1", link: "libold.so"},
	}})
	env := filepath.Join(t.TempDir(), "env")
	rep, err := Install(context.Background(), env, []Package{p}, Options{AllowHardlinks: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := run(t, filepath.Join(env, "bin/old-config")); got != env+"/lib\n" {
		t.Fatalf("bin/old-config printed %q", got)
	}
	if target, err := os.Readlink(filepath.Join(env, "lib/libold.so.1")); err != nil || target != "libold.so" {
		t.Fatalf("lib/libold.so.1: %q %v", target, err)
	}
	if rep.Patched != 1 {
		t.Fatalf("report %+v", rep)
	}
	// Legacy packages carry no hashes: conda-meta gets computed ones.
	m := readMeta(t, env, "old-1.0-h0_0")
	for _, pe := range m["paths_data"].(map[string]any)["paths"].([]any) {
		e := pe.(map[string]any)
		if e["path_type"] == "softlink" {
			continue
		}
		orig, _ := fileSum(t, filepath.Join(p.Dir, e["_path"].(string)))
		inPrefix, _ := fileSum(t, filepath.Join(env, e["_path"].(string)))
		if e["sha256"] != orig || e["sha256_in_prefix"] != inPrefix {
			t.Errorf("%s: sha256 %v (want %s), sha256_in_prefix %v (want %s)", e["_path"], e["sha256"], orig, e["sha256_in_prefix"], inPrefix)
		}
	}
}

// pythonPkg is a "python" package whose interpreter is a wrapper around a
// real one, pointed at the environment's site-packages through a text
// placeholder.
func pythonPkg(t *testing.T, pkgs, realPython string) Package {
	ph := placeholder255()
	return makePkg(t, pkgs, pkgSpec{name: "python", version: "3.11.7", build: "h0_cpython", files: []fileSpec{
		{path: "bin/python3.11", exec: true, placeholder: ph,
			data: "#!/bin/sh\nPYTHONPATH=\"" + ph + "/lib/python3.11/site-packages\" exec \"" + realPython + "\" \"$@\"\n"},
		{path: "bin/python3", link: "python3.11"},
		{path: "bin/python", link: "python3.11"},
		{path: "lib/python3.11/site-packages/README.txt", data: "site-packages\n"},
	}})
}

func noarchHello(t *testing.T, pkgs string) Package {
	return makePkg(t, pkgs, pkgSpec{name: "hello", noarch: "python", build: "pyh0_0", timestamp: 1710000000000,
		depends: []string{"python >=3.8"},
		files: []fileSpec{
			{path: "site-packages/hello/__init__.py", data: ""},
			{path: "site-packages/hello/cli.py", data: "import sys\n\ndef main():\n    print('hello from', __file__, sys.argv[0].rsplit('/', 1)[-1])\n    return 3\n"},
			{path: "python-scripts/hello-raw", exec: true, data: "#!/bin/sh\necho raw\n"},
		},
		entryPoints: []string{"hello = hello.cli:main", "hello-x = hello.cli:main"},
	})
}

func TestNoarchPython(t *testing.T) {
	t.Parallel()
	realPython := testutil.Python(t, "3.11")
	work := t.TempDir()
	pkgs := filepath.Join(work, "pkgs")
	py := pythonPkg(t, pkgs, realPython)
	hello := noarchHello(t, pkgs)

	short := filepath.Join(work, "env")
	long := filepath.Join(work, strings.Repeat("a-long-directory-name/", 7), "env")
	if len(long+"/bin/python3.11")+2 <= maxShebang {
		t.Fatalf("long prefix %q is not long enough to need a shebang rewrite", long)
	}
	for _, env := range []string{short, long} {
		rep, err := Install(context.Background(), env, []Package{py, hello}, Options{AllowHardlinks: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"lib/python3.11/site-packages/hello/cli.py", "bin/hello-raw", "bin/hello", "bin/hello-x"} {
			if _, err := os.Stat(filepath.Join(env, p)); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		}
		script, err := os.ReadFile(filepath.Join(env, "bin/hello"))
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(script), "\n")
		if env == short && first != "#!"+env+"/bin/python3.11" {
			t.Errorf("entry point shebang %q", first)
		}
		if env == long && first != "#!/bin/sh" {
			t.Errorf("entry point with a %d-byte interpreter path kept shebang %q", len(env)+15, first)
		}
		cmd := exec.Command(filepath.Join(env, "bin/hello-x"))
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
			t.Fatalf("bin/hello-x: %v (want exit status 3 from main)\n%s", err, out)
		}
		want := "hello from " + env + "/lib/python3.11/site-packages/hello/cli.py hello-x\n"
		if string(out) != want {
			t.Fatalf("bin/hello-x printed %q, want %q", out, want)
		}
		if got := run(t, filepath.Join(env, "bin/hello-raw")); got != "raw\n" {
			t.Fatalf("bin/hello-raw printed %q", got)
		}
		if rep.Linked == 0 {
			t.Errorf("nothing was hardlinked: %+v", rep)
		}
		m := readMeta(t, env, "hello-1.0-pyh0_0")
		files := strings.Join(toStrings(m["files"]), " ")
		wantFiles := "bin/hello bin/hello-raw bin/hello-x lib/python3.11/site-packages/hello/__init__.py lib/python3.11/site-packages/hello/cli.py"
		if files != wantFiles {
			t.Errorf("files = %s\nwant    %s", files, wantFiles)
		}
		types := map[string]string{}
		for _, pe := range m["paths_data"].(map[string]any)["paths"].([]any) {
			e := pe.(map[string]any)
			types[e["_path"].(string)] = e["path_type"].(string)
		}
		if types["bin/hello"] != "unix_python_entry_point" || types["bin/hello-raw"] != "hardlink" {
			t.Errorf("path types %v", types)
		}
	}
}

func TestNoarchPythonSitePackagesPath(t *testing.T) {
	t.Parallel()
	pkgs := t.TempDir()
	py := makePkg(t, pkgs, pkgSpec{name: "python", version: "3.13.1", build: "h0_cp313t",
		extraIndex: map[string]any{"python_site_packages_path": "lib/python3.13t/site-packages"},
		files:      []fileSpec{{path: "bin/python3.13", exec: true, data: "#!/bin/sh\n"}}})
	py.Record.PythonSitePackagesPath = ""
	hello := noarchHello(t, pkgs)
	env := filepath.Join(t.TempDir(), "env")
	if _, err := Install(context.Background(), env, []Package{py, hello}, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(env, "lib/python3.13t/site-packages/hello/cli.py")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(env, "bin/hello"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "#!"+env+"/bin/python3.13\n") {
		t.Fatalf("entry point starts %q", strings.SplitN(string(b), "\n", 2)[0])
	}

	// Without a python package there is nowhere to put noarch: python.
	_, err = Install(context.Background(), filepath.Join(t.TempDir(), "env"), []Package{hello}, Options{})
	if err == nil || !strings.Contains(err.Error(), "no python package") {
		t.Fatalf("install of noarch: python without python: %v", err)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

func linksDirsClobberPkgs(t *testing.T, pkgs string) []Package {
	a := makePkg(t, pkgs, pkgSpec{name: "liba", files: []fileSpec{
		{path: "lib/libfoo.so.1.2", data: "foo library", exec: true},
		{path: "lib/libfoo.so.1", link: "libfoo.so.1.2"},
		{path: "lib/libfoo.so", link: "libfoo.so.1"},
		{path: "share/a/empty", dir: true},
		{path: "etc/conf", data: "from a\n"},
		{path: "bin/.liba-post-link.sh", data: "echo hi\n", exec: true},
		{path: "share/doc/a.txt", data: "doc", noLink: true},
	}})
	b := makePkg(t, pkgs, pkgSpec{name: "libb", version: "2.0", timestamp: 1720000000000, files: []fileSpec{
		{path: "etc/conf", data: "from b\n"},
		{path: "lib64", link: "lib"},
		{path: "share/a/empty", dir: true},
		{path: "share/b", dir: true},
	}})
	c := makePkg(t, pkgs, pkgSpec{name: "libc", files: []fileSpec{
		{path: "lib64/libbar.so", data: "bar library"},
	}})
	return []Package{a, b, c}
}

func TestLinksDirsClobber(t *testing.T) {
	t.Parallel()
	pkgs := linksDirsClobberPkgs(t, t.TempDir())
	env := filepath.Join(t.TempDir(), "env")
	rep, err := Install(context.Background(), env, pkgs, Options{AllowHardlinks: true})
	if err != nil {
		t.Fatal(err)
	}
	for link, want := range map[string]string{"lib/libfoo.so": "libfoo.so.1", "lib/libfoo.so.1": "libfoo.so.1.2", "lib64": "lib"} {
		if got, err := os.Readlink(filepath.Join(env, link)); err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %q", link, got, err, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(env, "lib/libfoo.so")); err != nil || string(b) != "foo library" {
		t.Errorf("lib/libfoo.so reads %q %v", b, err)
	}
	// Written below the lib64 link: it must land in lib/, not through it.
	if fi, err := os.Lstat(filepath.Join(env, "lib/libbar.so")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("lib/libbar.so: %v %v", fi, err)
	}
	for _, d := range []string{"share/a/empty", "share/b"} {
		if fi, err := os.Stat(filepath.Join(env, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", d, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(env, "etc/conf")); string(b) != "from b\n" {
		t.Errorf("etc/conf = %q: the later package must win", b)
	}
	want := []Clobber{{Path: "etc/conf", Previous: "liba-1.0-h0_0", Winner: "libb-2.0-h0_0"}}
	if len(rep.Clobbered) != 1 || rep.Clobbered[0] != want[0] {
		t.Errorf("clobbered %+v, want %+v", rep.Clobbered, want)
	}
	if strings.Join(rep.LinkScripts, ",") != "bin/.liba-post-link.sh" {
		t.Errorf("link scripts %v", rep.LinkScripts)
	}
	// no_link files are copied even when hardlinks are allowed.
	fi, _ := os.Stat(filepath.Join(env, "share/doc/a.txt"))
	src, _ := os.Stat(filepath.Join(pkgs[0].Dir, "share/doc/a.txt"))
	if os.SameFile(fi, src) {
		t.Error("a no_link file was hardlinked")
	}
	fi, _ = os.Stat(filepath.Join(env, "lib/libfoo.so.1.2"))
	src, _ = os.Stat(filepath.Join(pkgs[0].Dir, "lib/libfoo.so.1.2"))
	if !os.SameFile(fi, src) {
		t.Error("a plain file was not hardlinked")
	}
	if rep.Linked+rep.Copied != 5 || rep.Files != 8 {
		t.Errorf("report %+v", rep)
	}
	checkMetaMatchesTree(t, env)
}

// checkMetaMatchesTree checks that every path below env but conda-meta is
// listed in some package's files, and every listed path exists.
func checkMetaMatchesTree(t *testing.T, env string) {
	t.Helper()
	listed := map[string]bool{}
	metas, _ := filepath.Glob(filepath.Join(env, "conda-meta", "*.json"))
	if len(metas) == 0 {
		t.Fatal("no conda-meta records")
	}
	for _, mp := range metas {
		dist := strings.TrimSuffix(filepath.Base(mp), ".json")
		m := readMeta(t, env, dist)
		for _, k := range []string{"name", "version", "build", "build_number", "depends", "constrains", "license", "md5", "sha256", "size", "subdir", "timestamp", "url", "channel", "fn", "files", "paths_data", "link", "extracted_package_dir", "package_tarball_full_path", "requested_spec"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: no %q", dist, k)
			}
		}
		if m["name"].(string)+"-"+m["version"].(string)+"-"+m["build"].(string) != dist {
			t.Errorf("%s: record names %v-%v-%v", dist, m["name"], m["version"], m["build"])
		}
		pd := m["paths_data"].(map[string]any)
		if pd["paths_version"] != float64(1) {
			t.Errorf("%s: paths_version %v", dist, pd["paths_version"])
		}
		var paths []string
		for _, pe := range pd["paths"].([]any) {
			paths = append(paths, pe.(map[string]any)["_path"].(string))
		}
		files := toStrings(m["files"])
		if strings.Join(paths, "\n") != strings.Join(files, "\n") {
			t.Errorf("%s: paths_data and files differ:\n%v\n%v", dist, paths, files)
		}
		for _, f := range files {
			listed[f] = true
			if _, err := os.Lstat(filepath.Join(env, f)); err != nil {
				t.Errorf("%s lists %s: %v", dist, f, err)
			}
		}
	}
	err := filepath.WalkDir(env, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(env, p)
		rel = filepath.ToSlash(rel)
		if rel == "conda-meta" {
			return filepath.SkipDir
		}
		if !d.IsDir() && !listed[rel] && !listedBelowLink(rel, listed, env) {
			t.Errorf("%s is in the tree but in no conda-meta record", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// listedBelowLink accepts a file that a package listed under a directory
// link (lib64/libbar.so is lib/libbar.so).
func listedBelowLink(rel string, listed map[string]bool, env string) bool {
	for f := range listed {
		if real, err := filepath.EvalSymlinks(filepath.Join(env, f)); err == nil {
			if r, _ := filepath.Rel(env, real); filepath.ToSlash(r) == rel {
				return true
			}
		}
	}
	return false
}

func TestEscapingLinksRefused(t *testing.T) {
	t.Parallel()
	for name, target := range map[string]string{
		"up":       "../../etc/passwd",
		"absolute": "/etc/passwd",
		"through":  "sub/../../../x",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pkgs := t.TempDir()
			p := makePkg(t, pkgs, pkgSpec{name: "bad", files: []fileSpec{
				{path: "lib/ok", data: "x"},
				{path: "lib/evil", link: target},
			}})
			out := t.TempDir()
			_, err := Install(context.Background(), filepath.Join(out, "env"), []Package{p}, Options{})
			if err == nil || !strings.Contains(err.Error(), "outside the prefix") || !strings.Contains(err.Error(), "bad-1.0-h0_0") {
				t.Fatalf("link to %s: err = %v", target, err)
			}
			noLeftovers(t, out)
		})
	}
	// An absolute link into the target prefix is fine.
	pkgs := t.TempDir()
	p := makePkg(t, pkgs, pkgSpec{name: "abs", files: []fileSpec{
		{path: "lib/real", data: "x"},
		{path: "lib/alias", link: "/opt/conda/lib/real"},
	}})
	if _, err := Install(context.Background(), filepath.Join(t.TempDir(), "env"), []Package{p}, Options{TargetPrefix: "/opt/conda"}); err != nil {
		t.Fatal(err)
	}
}

func TestStagingDir(t *testing.T) {
	t.Parallel()
	pkgs := t.TempDir()
	p := makePkg(t, pkgs, pkgSpec{name: "x", files: []fileSpec{{path: "a", data: "a"}}})
	out := t.TempDir()
	// An existing empty directory is fine.
	empty := filepath.Join(out, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(context.Background(), empty, []Package{p}, Options{}); err != nil {
		t.Fatal(err)
	}
	// A non-empty one is refused and left alone.
	if _, err := Install(context.Background(), empty, []Package{p}, Options{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("install into a non-empty directory: %v", err)
	}
	noLeftovers(t, out, "empty")

	// Records that do not match the package, or unusable names, are refused.
	bad := p
	bad.Record.Version = "2.0"
	if _, err := Install(context.Background(), filepath.Join(out, "e2"), []Package{bad}, Options{}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("mismatched record: %v", err)
	}
	q := makePkg(t, pkgs, pkgSpec{name: "y", version: "..", files: []fileSpec{{path: "a", data: "a"}}})
	if _, err := Install(context.Background(), filepath.Join(out, "e3"), []Package{q}, Options{}); err == nil || !strings.Contains(err.Error(), "file name") {
		t.Fatalf("version '..': %v", err)
	}
	r := makePkg(t, pkgs, pkgSpec{name: "z", files: []fileSpec{{path: "conda-meta/z-1.0-h0_0.json", data: "{}"}}})
	if _, err := Install(context.Background(), filepath.Join(out, "e4"), []Package{r}, Options{}); err == nil || !strings.Contains(err.Error(), "conda-meta") {
		t.Fatalf("package writing conda-meta: %v", err)
	}
	if _, err := Install(context.Background(), filepath.Join(out, "e5"), []Package{p}, Options{TargetPrefix: "relative/prefix"}); err == nil {
		t.Fatal("relative target prefix accepted")
	}
	noLeftovers(t, out, "empty")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Install(ctx, filepath.Join(out, "e6"), []Package{p}, Options{}); err == nil {
		t.Fatal("install with a cancelled context succeeded")
	}
	noLeftovers(t, out, "empty")
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	pkgs := filepath.Join(work, "pkgs")
	all := linksDirsClobberPkgs(t, pkgs)
	ph := placeholder255()
	all = append(all, makePkg(t, pkgs, pkgSpec{name: "tool", files: []fileSpec{
		{path: "bin/tool", exec: true, placeholder: ph, data: "#!" + ph + "/bin/perl -w\nprint 1\n"},
		{path: "share/tool/data.bin", placeholder: ph, binary: true, data: "\x00" + ph + "/x\x00rest"},
	}}))
	py := pythonPkg(t, pkgs, "/usr/bin/python3")
	all = append([]Package{py}, append(all, noarchHello(t, pkgs))...)

	opts := Options{TargetPrefix: "/opt/" + strings.Repeat("conda-", 20) + "env", History: "sparkenv build env.hcl"}
	var digests []string
	for i, hard := range []bool{false, false, true} {
		env := filepath.Join(work, "out", string(rune('a'+i)), "env")
		o := opts
		o.AllowHardlinks = hard
		o.Jobs = 1 + 7*i
		if _, err := Install(context.Background(), env, all, o); err != nil {
			t.Fatal(err)
		}
		digests = append(digests, treeDigest(t, env))
		checkMetaMatchesTree(t, env)
	}
	if digests[0] != digests[1] {
		t.Fatalf("two installs differ:\n%s\n----\n%s", digests[0], digests[1])
	}
	// Hardlinking changes only conda-meta's link type, never the files.
	withoutMeta := func(d string) string {
		var keep []string
		for _, l := range strings.Split(d, "\n") {
			if !strings.HasPrefix(l, "conda-meta/") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if withoutMeta(digests[0]) != withoutMeta(digests[2]) {
		t.Fatalf("hardlinked and copied installs differ:\n%s\n----\n%s", digests[0], digests[2])
	}
	// The perl script's shebang is too long for the kernel.
	env := filepath.Join(work, "out", "a", "env")
	b, _ := os.ReadFile(filepath.Join(env, "bin/tool"))
	if !strings.HasPrefix(string(b), "#!/usr/bin/env perl -w\nprint 1\n") {
		t.Errorf("bin/tool = %q", b)
	}
	h, _ := os.ReadFile(filepath.Join(env, "conda-meta/history"))
	wantHist := "==> 2024-07-03 09:46:40 <==\n# cmd: sparkenv build env.hcl\n" +
		"+conda-forge/linux-64::python-3.11.7-h0_cpython\n" +
		"+conda-forge/linux-64::liba-1.0-h0_0\n" +
		"+conda-forge/linux-64::libb-2.0-h0_0\n" +
		"+conda-forge/linux-64::libc-1.0-h0_0\n" +
		"+conda-forge/linux-64::tool-1.0-h0_0\n" +
		"+conda-forge/noarch::hello-1.0-pyh0_0\n" +
		"# update specs: ['python', 'liba', 'libb', 'libc', 'tool', 'hello']\n"
	if string(h) != wantHist {
		t.Errorf("history:\n%s\nwant:\n%s", h, wantHist)
	}
	m := readMeta(t, env, "hello-1.0-pyh0_0")
	link := m["link"].(map[string]any)
	if link["source"] != opts.TargetPrefix+"/pkgs/hello-1.0-pyh0_0" || link["type"] != float64(3) {
		t.Errorf("link %v", link)
	}
	m = readMeta(t, filepath.Join(work, "out", "c", "env"), "liba-1.0-h0_0")
	if m["link"].(map[string]any)["type"] != float64(1) {
		t.Errorf("hardlinked package has link %v", m["link"])
	}
	// The meta records are indented JSON with sorted keys.
	raw, _ := os.ReadFile(filepath.Join(env, "conda-meta", "liba-1.0-h0_0.json"))
	if !bytes.HasPrefix(raw, []byte("{\n  \"build\": \"h0_0\",\n  \"build_number\": 0,\n  \"channel\": ")) {
		t.Errorf("conda-meta record starts %q", raw[:80])
	}
}

// TestHardlinkAcrossDevices installs from packages on another file system:
// hardlinks fail there and every file must be copied instead.
func TestHardlinkAcrossDevices(t *testing.T) {
	t.Parallel()
	shm, err := os.MkdirTemp("/dev/shm", "install-test-")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	out := t.TempDir()
	var a, b unix.Stat_t
	if unix.Stat(shm, &a) != nil || unix.Stat(out, &b) != nil || a.Dev == b.Dev {
		t.Skip("/dev/shm is on the same file system as the temporary directory")
	}
	p := makePkg(t, shm, pkgSpec{name: "x", files: []fileSpec{
		{path: "a", data: "a"}, {path: "b/c", data: "c", exec: true},
	}})
	var log bytes.Buffer
	rep, err := Install(context.Background(), filepath.Join(out, "env"), []Package{p}, Options{AllowHardlinks: true, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Linked != 0 || rep.Copied != 2 {
		t.Fatalf("report %+v", rep)
	}
	if b, err := os.ReadFile(filepath.Join(out, "env", "b/c")); err != nil || string(b) != "c" {
		t.Fatalf("b/c: %q %v", b, err)
	}
	if !strings.Contains(log.String(), "2 copied") {
		t.Errorf("log: %s", log.String())
	}
}

func TestLinkLoopsAndFilesBelowFiles(t *testing.T) {
	t.Parallel()
	pkgs := t.TempDir()
	loop := makePkg(t, pkgs, pkgSpec{name: "loop", files: []fileSpec{{path: "a", link: "b"}, {path: "b", link: "a"}}})
	below := makePkg(t, pkgs, pkgSpec{name: "below", files: []fileSpec{{path: "a/f", data: "x"}}})
	file := makePkg(t, pkgs, pkgSpec{name: "file", files: []fileSpec{{path: "a", data: "x"}}})
	nested := makePkg(t, pkgs, pkgSpec{name: "nested", files: []fileSpec{{path: "a/f/g", data: "x"}}})
	for _, c := range []struct {
		pkgs []Package
		want string
	}{
		{[]Package{loop, below}, "too many levels of symbolic links"},
		{[]Package{file, nested}, "needs a to be a directory"},
	} {
		out := t.TempDir()
		_, err := Install(context.Background(), filepath.Join(out, "env"), c.pkgs, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %q", err, c.want)
		}
		noLeftovers(t, out)
	}
	// The later package wins when a file replaces a link to a directory.
	env := filepath.Join(t.TempDir(), "env")
	rep, err := Install(context.Background(), env, []Package{loop, file}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Clobbered) != 1 || rep.Clobbered[0].Path != "a" {
		t.Fatalf("clobbered %+v", rep.Clobbered)
	}
	if fi, err := os.Lstat(filepath.Join(env, "a")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("a: %v %v", fi, err)
	}
}
