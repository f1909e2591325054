package pyfiles

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/internal/testutil"
)

// writeTree lays out a small project: a package with a subpackage, tests,
// byte-code caches and a non-Python data file.
func writeTree(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"src/pkg/__init__.py":                     "",
		"src/pkg/mod.py":                          "from pkg.sub import x\n\ndef f():\n    return x.VALUE * 2\n",
		"src/pkg/sub/__init__.py":                 "",
		"src/pkg/sub/x.py":                        "VALUE = 21\n",
		"src/pkg/sub/data.json":                   "{}\n",
		"src/pkg/__pycache__/mod.cpython-311.pyc": "stale",
		"src/pkg/old.pyc":                         "stale",
		"src/tests/test_mod.py":                   "import pkg\n",
		"src/tests/conftest.py":                   "",
	}
	for p, data := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func build(t *testing.T, base string, cfg *Config, name string) (string, *builders.Result) {
	t.Helper()
	out := t.TempDir()
	req := &builders.Request{
		Address: "target.pyfiles." + name, Name: name, Config: cfg, BaseDir: base,
		OutDir: out, TempDir: t.TempDir(), Jobs: 2,
	}
	res, err := New().Build(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(out, res.Metadata["main"]), res
}

func members(t *testing.T, zipPath string) []string {
	t.Helper()
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	return names
}

func TestBuildMembers(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	writeTree(t, base)
	cfg := &Config{Source: "src", Include: []string{"**/*.py"}, Exclude: []string{"tests/**"}}
	zipPath, res := build(t, base, cfg, "app")
	if res.Metadata["main"] != "app.zip" {
		t.Errorf("main = %q", res.Metadata["main"])
	}
	want := []string{"pkg/", "pkg/__init__.py", "pkg/mod.py", "pkg/sub/", "pkg/sub/__init__.py", "pkg/sub/x.py"}
	if got := members(t, zipPath); !reflect.DeepEqual(got, want) {
		t.Errorf("members:\n got %q\nwant %q", got, want)
	}

	// Without include, data files come along; caches never do.
	zipPath, _ = build(t, base, &Config{Source: "src", Output: "all.zip"}, "app")
	got := members(t, zipPath)
	if !sort.StringsAreSorted(got) {
		t.Errorf("members not sorted: %q", got)
	}
	for _, m := range got {
		if strings.Contains(m, "__pycache__") || strings.HasSuffix(m, ".pyc") {
			t.Errorf("cache file %s in the zip", m)
		}
	}
	if !strings.Contains(strings.Join(got, " "), "pkg/sub/data.json") || !strings.Contains(strings.Join(got, " "), "tests/conftest.py") {
		t.Errorf("default include misses files: %q", got)
	}
	if filepath.Base(zipPath) != "all.zip" {
		t.Errorf("output name %s", zipPath)
	}
}

func TestImportFromZip(t *testing.T) {
	t.Parallel()
	py := testutil.Python(t, "3.11")
	base := t.TempDir()
	writeTree(t, base)
	zipPath, _ := build(t, base, &Config{Source: "src", Exclude: []string{"tests/**"}}, "app")
	cmd := exec.Command(py, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); import pkg.mod; print(pkg.mod.f()); print(pkg.mod.__file__)", zipPath)
	cmd.Dir = t.TempDir() // nothing importable beside it
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if lines[0] != "42" {
		t.Errorf("pkg.mod.f() printed %q, want 42", lines[0])
	}
	if !strings.HasPrefix(lines[len(lines)-1], zipPath) {
		t.Errorf("pkg.mod was not imported from the zip: %s", lines[len(lines)-1])
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	a, b := t.TempDir(), t.TempDir()
	writeTree(t, a)
	writeTree(t, b)
	// Different permissions beyond the exec bit and different times must
	// not matter.
	if err := os.Chmod(filepath.Join(b, "src", "pkg", "mod.py"), 0o664); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Source: "src", Exclude: []string{"tests/**"}}
	z1, _ := build(t, a, cfg, "app")
	z2, _ := build(t, a, cfg, "app")
	z3, _ := build(t, b, cfg, "app")
	b1, _ := os.ReadFile(z1)
	b2, _ := os.ReadFile(z2)
	b3, _ := os.ReadFile(z3)
	if !bytes.Equal(b1, b2) {
		t.Error("two builds of the same tree differ")
	}
	if !bytes.Equal(b1, b3) {
		t.Error("builds of identical trees in two directories differ")
	}
}

func TestSymlinks(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	writeTree(t, base)
	// A link inside the tree is stored as the file it names.
	if err := os.Symlink("sub/x.py", filepath.Join(base, "src", "pkg", "alias.py")); err != nil {
		t.Fatal(err)
	}
	zipPath, _ := build(t, base, &Config{Source: "src", Include: []string{"pkg/**"}}, "app")
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	f, err := zr.Open("pkg/alias.py")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(f)
	if buf.String() != "VALUE = 21\n" {
		t.Errorf("alias.py holds %q", buf.String())
	}

	// A link leaving the source directory is refused, naming it.
	if err := os.WriteFile(filepath.Join(base, "secret.py"), []byte("TOKEN = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../secret.py", filepath.Join(base, "src", "pkg", "leak.py")); err != nil {
		t.Fatal(err)
	}
	req := &builders.Request{Name: "app", Config: &Config{Source: "src"}, BaseDir: base, OutDir: t.TempDir()}
	_, err = New().Build(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "pkg/leak.py") || !strings.Contains(err.Error(), "outside") {
		t.Errorf("escaping link: err = %v", err)
	}
	if _, err := New().Inputs(&Config{Source: "src"}, base); err == nil {
		t.Error("Inputs accepted an escaping link")
	}
}

func TestInputs(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	writeTree(t, base)
	got, err := New().Inputs(&Config{Source: "src", Include: []string{"**/*.py"}, Exclude: []string{"tests/**"}}, base)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, p := range []string{"pkg/__init__.py", "pkg/mod.py", "pkg/sub/__init__.py", "pkg/sub/x.py"} {
		want = append(want, filepath.Join(base, "src", filepath.FromSlash(p)))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Inputs:\n got %q\nwant %q", got, want)
	}
	for _, p := range got {
		if !filepath.IsAbs(p) {
			t.Errorf("%s is not absolute", p)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	writeTree(t, base)
	if err := os.WriteFile(filepath.Join(base, "file.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b := New()
	if err := b.Validate(&Config{Source: "src"}, base); err != nil {
		t.Errorf("valid config: %v", err)
	}
	if err := b.Validate(&Config{Source: filepath.Join(base, "src")}, "/elsewhere"); err != nil {
		t.Errorf("absolute source: %v", err)
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Source: "nope"}, filepath.Join(base, "nope") + " does not exist"},
		{Config{Source: "file.txt"}, "file.txt is not a directory"},
		{Config{}, "source is empty"},
		{Config{Source: "src", Include: []string{"a**"}}, `include: glob pattern "a**"`},
		{Config{Source: "src", Exclude: []string{"["}}, `exclude: glob pattern "["`},
		{Config{Source: "src", Output: "x.tar.gz"}, "must end in .zip"},
		{Config{Source: "src", Output: "dir/x.zip"}, "must be a file name"},
		{Config{Source: "src", Level: 12}, "level 12"},
	} {
		err := b.Validate(&c.cfg, base)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want error containing %q", c.cfg, err, c.want)
		}
	}
	if err := b.Validate(struct{}{}, base); err == nil {
		t.Error("wrong config type accepted")
	}
}

func TestNothingMatched(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	writeTree(t, base)
	req := &builders.Request{Name: "app", Config: &Config{Source: "src", Include: []string{"**/*.rs"}}, BaseDir: base, OutDir: t.TempDir()}
	if _, err := New().Build(context.Background(), req); err == nil || !strings.Contains(err.Error(), "no files") {
		t.Errorf("err = %v", err)
	}
	if left, _ := os.ReadDir(req.OutDir); len(left) != 0 {
		t.Errorf("output left behind: %v", left)
	}
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	r := builders.NewRegistry(New())
	if b, ok := r.Lookup("pyfiles"); !ok || b.Version() != "1" {
		t.Error("pyfiles not registered")
	}
	if _, ok := New().NewConfig().(*Config); !ok {
		t.Error("NewConfig does not return *Config")
	}
}

func TestDecodeHCL(t *testing.T) {
	t.Parallel()
	src := `
source  = "src"
include = ["**/*.py"]
exclude = ["tests/**"]
level   = 9
`
	f, diags := hclparse.NewParser().ParseHCL([]byte(src), "env.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	cfg := New().NewConfig()
	if diags := gohcl.DecodeBody(f.Body, nil, cfg); diags.HasErrors() {
		t.Fatal(diags)
	}
	want := &Config{Source: "src", Include: []string{"**/*.py"}, Exclude: []string{"tests/**"}, Level: 9}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("decoded %+v, want %+v", cfg, want)
	}
	f, _ = hclparse.NewParser().ParseHCL([]byte(`include = ["x"]`), "env.hcl")
	if diags := gohcl.DecodeBody(f.Body, nil, New().NewConfig()); !diags.HasErrors() {
		t.Error("missing source accepted")
	}
}
