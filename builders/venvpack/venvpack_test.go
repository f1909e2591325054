package venvpack

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/pex/pextest"
	"github.com/sparkenv/sparkenv/internal/execx"
	"github.com/sparkenv/sparkenv/internal/testutil"
)

type fixture struct {
	env   builders.Input
	cache string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ws := pextest.Wheels(t, t.TempDir(), pextest.Pair()...)
	return &fixture{env: pextest.EnvInput(t, "etl", ws), cache: t.TempDir()}
}

func (f *fixture) request(t *testing.T, cfg *Config, log *bytes.Buffer) *builders.Request {
	if cfg.Environment == "" {
		cfg.Environment = "environment.etl"
	}
	return &builders.Request{
		Address: "target.venv_pack.etl", Name: "etl", Config: cfg,
		Inputs: []builders.Input{f.env}, OutDir: t.TempDir(), TempDir: t.TempDir(),
		Log: log, Runner: &execx.Runner{Env: os.Environ()}, PackageCacheDir: f.cache, Jobs: 2,
	}
}

func (f *fixture) build(t *testing.T, cfg *Config) (string, string) {
	t.Helper()
	var log bytes.Buffer
	req := f.request(t, cfg, &log)
	res, err := New().Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	return filepath.Join(req.OutDir, res.Metadata["main"]), log.String()
}

func untar(t *testing.T, archive, dir string) {
	t.Helper()
	tar := testutil.Tool(t, "tar")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tar, "-xf", archive, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
}

func run(t *testing.T, env []string, argv ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(cleanEnv(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// cleanEnv drops variables that would make a test pass for the wrong
// reason (an activated environment, a PYTHONPATH).
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CONDA_PREFIX":
			continue
		}
		out = append(out, kv)
	}
	return out
}

func TestLinkedVenvRunsAnywhere(t *testing.T) {
	t.Parallel()
	py := testutil.Python(t, "3.11")
	f := newFixture(t)
	archive, log := f.build(t, &Config{Python: py})
	if strings.Contains(log, "WARNING") {
		t.Errorf("warning for an interpreter that exists:\n%s", log)
	}
	// Compiled with the real interpreter, the archive is still the same
	// bytes on a rebuild.
	again, _ := f.build(t, &Config{Python: py})
	if b1, b2 := readFile(t, archive), readFile(t, again); !bytes.Equal(b1, b2) {
		t.Errorf("two builds with compiled .pyc files differ")
	}
	base := t.TempDir()
	for _, dir := range []string{filepath.Join(base, "one"), filepath.Join(base, "two", "with space")} {
		untar(t, archive, dir)
		out, err := run(t, nil, filepath.Join(dir, "bin", "python"), "-c",
			"import sys, a, b, importlib.metadata as m; print(b.g(), m.version('beta'), sys.prefix == sys.argv[1], sys.base_prefix != sys.prefix)", dir)
		if err != nil || out != "beta-g:alpha-f 2.0 True True\n" {
			t.Errorf("%s: bin/python: %v: %q", dir, err, out)
		}
		// Every file RECORD lists, the rewritten launcher included, has
		// the recorded hash, as Python's own reader sees it.
		verify := "import base64, hashlib, importlib.metadata as m\nn = 0\nfor d in ('alpha', 'beta'):\n" +
			"    for f in m.files(d):\n        if f.hash:\n            n += 1\n" +
			"            h = base64.urlsafe_b64encode(hashlib.sha256(f.locate().read_bytes()).digest()).rstrip(b'=').decode()\n" +
			"            assert h == f.hash.value, f\nprint(n, [str(f) for f in m.files('alpha') if 'bin' in str(f)])\n"
		out, err = run(t, nil, filepath.Join(dir, "bin", "python"), "-c", verify)
		if err != nil || out != "17 ['../../../bin/alpha-cli']\n" {
			t.Errorf("%s: RECORD check: %v: %s", dir, err, out)
		}
		out, err = run(t, nil, filepath.Join(dir, "bin", "alpha-cli"), "x", "y z")
		if err != nil || out != "alpha-cli x y z\n" {
			t.Errorf("%s: console script: %v: %q", dir, err, out)
		}
		// A script found through PATH, with the archive activated from
		// another directory.
		script := `cd / && source "$1/bin/activate" && echo "$VIRTUAL_ENV" && command -v python && alpha-cli act && python -c 'import a; print(a.f())' && deactivate && echo "${VIRTUAL_ENV:-none}"`
		out, err = run(t, nil, testutil.Tool(t, "bash"), "-c", script, "bash", dir)
		want := dir + "\n" + filepath.Join(dir, "bin", "python") + "\nalpha-cli act\nalpha-f\nnone\n"
		if err != nil || out != want {
			t.Errorf("%s: activate: %v:\n%s\nwant\n%s", dir, err, out, want)
		}
		checkPyc(t, filepath.Join(dir, "lib", "python3.11", "site-packages", "b", "__pycache__", "__init__.cpython-311.pyc"))
		cfg, _ := os.ReadFile(filepath.Join(dir, "pyvenv.cfg"))
		if !strings.Contains(string(cfg), "home = "+filepath.Dir(py)+"\n") || !strings.Contains(string(cfg), "include-system-site-packages = false\n") {
			t.Errorf("pyvenv.cfg:\n%s", cfg)
		}
		for _, link := range []string{"python", "python3", "python3.11"} {
			if target, err := os.Readlink(filepath.Join(dir, "bin", link)); err != nil || target != py {
				t.Errorf("bin/%s -> %q, %v; want %s", link, target, err, py)
			}
		}
	}
}

func TestMissingInterpreterWarns(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const py = "/opt/nowhere/bin/python3.11"
	archive, log := f.build(t, &Config{Python: py})
	if !strings.Contains(log, "WARNING: "+py+" is not an interpreter on this machine") || !strings.Contains(log, "will only work where "+py+" exists") {
		t.Errorf("no clear warning in the log:\n%s", log)
	}
	dir := t.TempDir()
	untar(t, archive, dir)
	readme, err := os.ReadFile(filepath.Join(dir, "README.txt"))
	if err != nil || !strings.Contains(string(readme), "ONLY WORKS WHERE "+py+" EXISTS") {
		t.Errorf("README.txt does not say where it works: %v\n%s", err, readme)
	}
	// What an executor without that interpreter sees: a dangling link.
	out, err := run(t, nil, filepath.Join(dir, "bin", "python"), "-c", "pass")
	if err == nil {
		t.Errorf("bin/python ran although %s does not exist: %s", py, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "lib", "python3.11", "site-packages", "a", "__init__.py")); err != nil {
		t.Errorf("wheels not installed: %v", err)
	}
	// check_python = false builds silently.
	no := false
	_, log = f.build(t, &Config{Python: py, CheckPython: &no})
	if strings.Contains(log, "WARNING") {
		t.Errorf("check_python = false still warned:\n%s", log)
	}
}

func TestVersionMismatchFails(t *testing.T) {
	t.Parallel()
	py := testutil.Python(t, "3.11")
	f := newFixture(t)
	var log bytes.Buffer
	// A name without a version, so that only running it can tell.
	link := filepath.Join(t.TempDir(), "python")
	if err := os.Symlink(py, link); err != nil {
		t.Fatal(err)
	}
	_, err := New().Build(context.Background(), f.request(t, &Config{Python: link, PythonVersion: "3.10"}, &log))
	if err == nil || !strings.Contains(err.Error(), "is Python 3.11 here, but python_version says 3.10") {
		t.Errorf("Build = %v", err)
	}
}

func TestPathVersionMismatchFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var log bytes.Buffer
	_, err := New().Build(context.Background(), f.request(t, &Config{Python: "/opt/py/bin/python3.10", PythonVersion: "3.11"}, &log))
	if err == nil || !strings.Contains(err.Error(), "names Python 3.10") {
		t.Errorf("Build = %v", err)
	}
}

func TestWheelForOtherPythonFails(t *testing.T) {
	t.Parallel()
	ws := pextest.Wheels(t, t.TempDir(), pextest.Spec{Name: "n", Version: "1", Tag: "cp310-cp310-manylinux_2_17_x86_64",
		Files: map[string]string{"n/__init__.py": ""}})
	f := &fixture{env: pextest.EnvInput(t, "etl", ws), cache: t.TempDir()}
	var log bytes.Buffer
	_, err := New().Build(context.Background(), f.request(t, &Config{Python: "/opt/py/bin/python3.11"}, &log))
	if err == nil || !strings.Contains(err.Error(), "is built for CPython 3.10, but the environment is for Python 3.11") {
		t.Errorf("Build = %v", err)
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, _ := f.build(t, &Config{Python: "/usr/local/bin/python3.12"})
	f.cache = t.TempDir()
	b, _ := f.build(t, &Config{Python: "/usr/local/bin/python3.12"})
	ba, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ba, bb) || len(ba) == 0 {
		t.Fatalf("two builds differ (%d and %d bytes)", len(ba), len(bb))
	}
	dir := t.TempDir()
	untar(t, a, dir)
	if _, err := os.Stat(filepath.Join(dir, "lib", "python3.12", "site-packages", "b", "__init__.py")); err != nil {
		t.Errorf("version not taken from the python path: %v", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []*Config{
		{},
		{Environment: "environment.x"},
		{Environment: "environment.x", Python: "python3"},
		{Environment: "environment.x", Python: "/usr/bin/python3", PythonVersion: "3"},
		{Environment: "environment.x", Python: "/usr/bin/python3", Format: "zip"},
		{Environment: "environment.x", Python: "/usr/bin/python3", Output: "x.zip"},
	} {
		if err := New().Validate(c, ""); err == nil {
			t.Errorf("Validate(%+v) accepted it", c)
		}
	}
	if err := New().Validate(&Config{Environment: "environment.x", Python: "/usr/bin/python3", Format: "tar.zst", Output: "e.tar.zst"}, ""); err != nil {
		t.Error(err)
	}
}

func TestRelocateScript(t *testing.T) {
	t.Parallel()
	in := "#!" + placeholderPython + " -E\n# -*- coding: utf-8 -*-\nimport sys\n"
	out, ok, err := relocateScript([]byte(in))
	want := "#!/bin/sh\n'''exec' \"$(dirname -- \"$0\")/python\" -E \"$0\" \"$@\"\n' '''\n# -*- coding: utf-8 -*-\nimport sys\n"
	if err != nil || !ok || string(out) != want {
		t.Errorf("relocateScript = %q, %v\nwant %q", out, ok, want)
	}
	if _, _, err := relocateScript([]byte("#!" + placeholderPython + " -c'x'\n")); err == nil {
		t.Errorf("relocateScript accepted an option with quotes")
	}
	for _, s := range []string{"#!/usr/bin/python\n", "#!" + placeholderPython + "3\n", "binary\x00"} {
		if _, ok, _ := relocateScript([]byte(s)); ok {
			t.Errorf("relocateScript rewrote %q", s)
		}
	}
}

func FuzzRelocateScript(f *testing.F) {
	for _, s := range []string{"#!" + placeholderPython + "\nimport x\n", "#!" + placeholderPython + " -E -s\n", "#!" + placeholderPython, "#!/bin/sh\n", "", "#!" + placeholderPython + " '''\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, ok, err := relocateScript(data)
		if err != nil {
			return
		}
		if !ok {
			if !bytes.Equal(out, data) {
				t.Fatalf("unchanged script was modified")
			}
			return
		}
		if !bytes.HasPrefix(out, []byte("#!/bin/sh\n'''exec' ")) {
			t.Fatalf("rewritten script does not start with the trampoline: %q", out)
		}
		_, rest, _ := bytes.Cut(data, []byte("\n"))
		if !bytes.HasSuffix(out, rest) {
			t.Fatalf("the script body was changed")
		}
	})
}

func TestDecodeHCL(t *testing.T) {
	t.Parallel()
	src := `
environment    = "environment.etl"
python         = "/opt/conda/bin/python3.11"
python_version = "3.11"
copies         = false
format         = "tar.gz"
`
	f, diags := hclparse.NewParser().ParseHCL([]byte(src), "env.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	cfg := New().NewConfig().(*Config)
	if diags := gohcl.DecodeBody(f.Body, nil, cfg); diags.HasErrors() {
		t.Fatal(diags)
	}
	want := &Config{Environment: "environment.etl", Python: "/opt/conda/bin/python3.11", PythonVersion: "3.11", Format: "tar.gz"}
	if !reflect.DeepEqual(cfg, want) || !cfg.checkPython() {
		t.Errorf("decoded %+v, want %+v", cfg, want)
	}
	f, _ = hclparse.NewParser().ParseHCL([]byte(src+"check_python = false\n"), "env.hcl")
	cfg = New().NewConfig().(*Config)
	if diags := gohcl.DecodeBody(f.Body, nil, cfg); diags.HasErrors() || cfg.checkPython() {
		t.Errorf("check_python = false: %v, %v", diags, cfg.checkPython())
	}
}

// checkPyc checks that p is an unchecked-hash .pyc (PEP 552 flags 0b01),
// which Python uses whatever the file times.
func checkPyc(t *testing.T, p string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Errorf("no compiled file: %v", err)
		return
	}
	if len(b) < 16 || b[4] != 1 || b[5] != 0 || b[6] != 0 || b[7] != 0 {
		t.Errorf("%s is not an unchecked-hash .pyc (flags % x)", p, b[4:8])
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
