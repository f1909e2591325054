package pex

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/pex/pextest"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/testutil"
)

// fixture builds PEX files from the same wheels in one package cache.
type fixture struct {
	wheels []lock.Wheel
	env    builders.Input
	cache  string
	src    string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ws := pextest.Wheels(t, t.TempDir(), pextest.Pair()...)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "job", "__init__.py"), "")
	writeFile(t, filepath.Join(src, "job", "main.py"), "import b\n\ndef run():\n    print('job', b.g())\n")
	return &fixture{wheels: ws, env: pextest.EnvInput(t, "etl", ws), cache: t.TempDir(), src: src}
}

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) build(t *testing.T, cfg *Config) (string, *builders.Result) {
	t.Helper()
	if cfg.Environment == "" {
		cfg.Environment = "environment.etl"
	}
	out := t.TempDir()
	var log bytes.Buffer
	req := &builders.Request{
		Address: "target.pex.job", Name: "job", Config: cfg, BaseDir: f.src,
		Inputs: []builders.Input{f.env}, OutDir: out, TempDir: t.TempDir(),
		Log: &log, PackageCacheDir: f.cache, Jobs: 2,
	}
	res, err := New().Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	return filepath.Join(out, res.Metadata["main"]), res
}

type run struct {
	args  []string
	env   []string
	stdin string
	dir   string
	// relative runs "./<file>" from the PEX's directory, as Spark does.
	relative bool
}

// exec runs the PEX as Spark does: the file itself, through its shebang.
func execPex(t *testing.T, pexPath string, r run) (string, string, int) {
	t.Helper()
	cmd := exec.Command(pexPath, r.args...)
	cmd.Dir = r.dir
	if r.relative {
		cmd = exec.Command("./"+filepath.Base(pexPath), r.args...)
		cmd.Dir = filepath.Dir(pexPath)
	}
	cmd.Env = append(os.Environ(), r.env...)
	cmd.Stdin = strings.NewReader(r.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s %q: %v", pexPath, r.args, err)
	}
	return stdout.String(), stderr.String(), code
}

func TestRunsLikePython(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, v := range []string{"3.10", "3.11", "3.12"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			py := testutil.Python(t, v)
			pexPath, res := f.build(t, &Config{
				EntryPoint: "b.app:main", PythonVersion: ">=3.10,<3.13", Sources: ".", Shebang: "#!" + py,
			})
			if got := res.Metadata["interpreter_constraints"]; got != ">=3.10,<3.13" {
				t.Errorf("metadata interpreter_constraints = %q", got)
			}
			root := t.TempDir()
			work := t.TempDir()
			writeFile(t, filepath.Join(work, "script.py"), "import sys, a, job.main\nprint('script', a.f(), sys.argv, sys.path[0] == __import__('os').getcwd())\n")
			sparkZip := filepath.Join(work, "pyspark.zip")
			writeZipFile(t, sparkZip, map[string]string{
				"sparkside/__init__.py": "",
				"sparkside/worker.py":   "import sys, b\nprint('worker', b.g(), sys.argv[1:])\n",
			})
			base := []string{"PEX_ROOT=" + root}
			inter := append([]string{"PEX_INTERPRETER=1"}, base...)
			cases := []struct {
				name string
				r    run
				out  string
				code int
			}{
				{"c", run{args: []string{"-c", "import a, sys; print(a.f(), sys.argv)", "x"}}, "alpha-f ['-c', 'x']\n", 0},
				{"c-joined", run{args: []string{"-uc", "import b; print(b.g())"}}, "beta-g:alpha-f\n", 0},
				{"m", run{args: []string{"-m", "b", "x", "--y"}}, "b-main beta-g:alpha-f ['x', '--y']\n", 0},
				{"spark-daemon", run{args: []string{"-m", "pyspark.daemon"}}, "daemon beta-g:alpha-f True\n", 0},
				{"flags", run{args: []string{"-u", "-B", "-E", "-s", "-W", "ignore", "-X", "dev", "-O", "-m", "pyspark.daemon"}}, "daemon beta-g:alpha-f True\n", 0},
				{"xoption", run{args: []string{"-X", "k=v", "-c", "import sys; print(sys._xoptions['k'], sys.dont_write_bytecode)"}, env: []string{"PYTHONDONTWRITEBYTECODE="}}, "v False\n", 0},
				{"B", run{args: []string{"-B", "-c", "import sys; print(sys.dont_write_bytecode)"}, env: []string{"PYTHONDONTWRITEBYTECODE="}}, "True\n", 0},
				{"u", run{args: []string{"-u", "-c", "import sys; print(sys.stdout.write_through, sys.stderr.write_through)"}, env: []string{"PYTHONUNBUFFERED="}}, "True True\n", 0},
				// Spark: "./job.pex -m <worker module>" from the
				// executor's directory, with pyspark.zip on PYTHONPATH.
				{"spark-pythonpath", run{args: []string{"-m", "sparkside.worker", "w"}, env: []string{"PYTHONPATH=" + sparkZip}, relative: true}, "worker beta-g:alpha-f ['w']\n", 0},
				{"entry-no-args", run{}, "entry beta-g:alpha-f []\n", 0},
				{"entry-argv", run{args: []string{"--fail", "x y", "-v"}}, "entry beta-g:alpha-f ['--fail', 'x y', '-v']\n", 3},
				{"sources", run{args: []string{"-c", "import job.main; job.main.run()"}}, "job beta-g:alpha-f\n", 0},
				{"script", run{args: []string{"script.py", "p", "-q"}, env: inter, dir: work}, "script alpha-f ['script.py', 'p', '-q'] True\n", 0},
				{"stdin-dash", run{args: []string{"-", "s1"}, env: inter, stdin: "import sys, b\nprint('stdin', b.g(), sys.argv)\n"}, "stdin beta-g:alpha-f ['-', 's1']\n", 0},
				{"stdin-pipe", run{env: inter, stdin: "import sys, a\nprint('piped', a.f(), sys.argv)\n"}, "piped alpha-f ['']\n", 0},
				{"interpreter-m", run{args: []string{"-m", "a.cli", "z"}, env: inter}, "", 0},
				{"traceback", run{args: []string{"-c", "import a\ndef g():\n    1/0\ng()"}}, "", 1},
				{"exit-code", run{args: []string{"-c", "import sys; sys.exit(7)"}}, "", 7},
				{"bad-option", run{args: []string{"-c"}, env: inter}, "", 2},
			}
			for _, c := range cases {
				env := append(append([]string{}, base...), c.r.env...)
				c.r.env = env
				stdout, stderr, code := execPex(t, pexPath, c.r)
				if code != c.code || c.out != "" && stdout != c.out {
					t.Errorf("%s: %q → exit %d, stdout %q, stderr %s\nwant exit %d, stdout %q", c.name, c.r.args, code, stdout, stderr, c.code, c.out)
				}
			}
			// A failure is reported as python reports it, from the
			// user's code down.
			_, stderr, _ := execPex(t, pexPath, run{args: []string{"-c", "def g():\n    1/0\ng()"}, env: base})
			want := "Traceback (most recent call last):\n  File \"<string>\", line 3, in <module>\n  File \"<string>\", line 2, in g\n"
			if !strings.HasPrefix(stderr, want) || !strings.HasSuffix(stderr, "ZeroDivisionError: division by zero\n") {
				t.Errorf("traceback:\n%s\nwant it to start with\n%s", stderr, want)
			}
			// Only the interpreter's standard library and the PEX are
			// on sys.path: no site-packages of the interpreter.
			stdout, _, _ := execPex(t, pexPath, run{args: []string{"-c", "import sys; print('\\n'.join(sys.path))"}, env: base})
			if strings.Contains(stdout, "site-packages") {
				t.Errorf("sys.path holds the interpreter's site-packages:\n%s", stdout)
			}
			if !strings.Contains(stdout, filepath.Join(root, "sparkenv")) {
				t.Errorf("sys.path does not hold the unpacked PEX under %s:\n%s", root, stdout)
			}
		})
	}
}

func TestInterpreterConstraintFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, v := range []string{"3.10", "3.6", "2.7"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			py := testutil.Python(t, v)
			pexPath, _ := f.build(t, &Config{PythonVersion: ">= 3.11, <3.13", Shebang: "#!" + py})
			root := t.TempDir()
			stdout, stderr, code := execPex(t, pexPath, run{args: []string{"-c", "print('ran')"}, env: []string{"PEX_ROOT=" + root}})
			want := regexp.MustCompile(`this PEX needs Python >=3\.11,<3\.13; ` + regexp.QuoteMeta(py) + ` is ` + regexp.QuoteMeta(v) + `\.\d+\n`)
			if code == 0 || stdout != "" || !want.MatchString(stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want a failure matching %s", code, stdout, stderr, want)
			}
			if des, _ := os.ReadDir(root); len(des) != 0 {
				t.Errorf("a refused interpreter unpacked the PEX: %v", des)
			}
		})
	}
}

func TestDefaultConstraintFromCondaPython(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	b, err := os.ReadFile(filepath.Join(f.env.Dir, lock.ResolvedFileName))
	if err != nil {
		t.Fatal(err)
	}
	var r lock.Resolved
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	r.Environment.Packages = append(r.Environment.Packages, pythonRecord("3.11.7"))
	b, _ = json.Marshal(r)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, lock.ResolvedFileName), string(b))
	f.env.Dir = dir
	pexPath, res := f.build(t, &Config{})
	if got := res.Metadata["interpreter_constraints"]; got != "==3.11.*" {
		t.Errorf("constraint = %q, want ==3.11.*", got)
	}
	info := readInfo(t, pexPath)
	if len(info.InterpreterConstraints) != 1 || info.InterpreterConstraints[0] != "==3.11.*" {
		t.Errorf("PEX-INFO interpreter_constraints = %q", info.InterpreterConstraints)
	}
}

func readInfo(t *testing.T, pexPath string) Info {
	t.Helper()
	zr, err := zip.OpenReader(pexPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	rc, err := zr.Open("PEX-INFO")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var info Info
	if err := json.NewDecoder(rc).Decode(&info); err != nil {
		t.Fatal(err)
	}
	return info
}

func TestConcurrentFirstStart(t *testing.T) {
	t.Parallel()
	py := testutil.Python(t, "3.11")
	f := newFixture(t)
	pexPath, _ := f.build(t, &Config{Shebang: "#!" + py})
	root := t.TempDir()
	const n = 16
	cmds := make([]*exec.Cmd, n)
	outs := make([]bytes.Buffer, n)
	for i := range cmds {
		cmds[i] = exec.Command(pexPath, "-c", "import b; print(b.g())")
		cmds[i].Env = append(os.Environ(), "PEX_ROOT="+root)
		cmds[i].Stdout = &outs[i]
		cmds[i].Stderr = &outs[i]
	}
	// Start them all before waiting for any, so that the unpacking races.
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, c := range cmds {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.Wait() }()
	}
	wg.Wait()
	for i := range cmds {
		if errs[i] != nil || outs[i].String() != "beta-g:alpha-f\n" {
			t.Errorf("process %d: %v: %q", i, errs[i], outs[i].String())
		}
	}
	des, err := os.ReadDir(filepath.Join(root, "sparkenv"))
	if err != nil {
		t.Fatal(err)
	}
	info := readInfo(t, pexPath)
	if len(des) != 1 || des[0].Name() != info.PexHash {
		var names []string
		for _, d := range des {
			names = append(names, d.Name())
		}
		t.Errorf("PEX_ROOT/sparkenv holds %q, want exactly [%s] (no temporary leftovers)", names, info.PexHash)
	}
}

func TestUnwritableHomeFallsBackToTemp(t *testing.T) {
	t.Parallel()
	py := testutil.Python(t, "3.11")
	f := newFixture(t)
	pexPath, _ := f.build(t, &Config{Shebang: "#!" + py})
	tmp := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PEX_ROOT=") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command(pexPath, "-c", "import a; print(a.f())")
	cmd.Env = append(env, "HOME=/dev/null", "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "alpha-f\n" {
		t.Fatalf("%v: %s", err, out)
	}
	matches, _ := filepath.Glob(filepath.Join(tmp, "pex-root-*", "sparkenv", readInfo(t, pexPath).PexHash, ".deps", "alpha-1.0-py3-none-any.whl", "a", "__init__.py"))
	if len(matches) != 1 {
		t.Errorf("the PEX was not unpacked under TMPDIR %s", tmp)
	}
	// A usable HOME gets the default ~/.pex.
	home := t.TempDir()
	cmd = exec.Command(pexPath, "-c", "import a; print(a.f())")
	cmd.Env = append(env, "HOME="+home, "TMPDIR="+tmp)
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "alpha-f\n" {
		t.Fatalf("%v: %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(home, ".pex", "sparkenv", readInfo(t, pexPath).PexHash, ".deps")); err != nil {
		t.Errorf("not unpacked under ~/.pex: %v", err)
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := func() *Config {
		return &Config{EntryPoint: "b.app:main", PythonVersion: "3.11", Sources: "."}
	}
	p1, _ := f.build(t, cfg())
	// A second build with a fresh cache and touched sources.
	f.cache = t.TempDir()
	if err := os.Chtimes(filepath.Join(f.src, "job", "main.py"), time0, time0); err != nil {
		t.Fatal(err)
	}
	p2, _ := f.build(t, cfg())
	b1, _ := os.ReadFile(p1)
	b2, _ := os.ReadFile(p2)
	if !bytes.Equal(b1, b2) {
		t.Fatalf("two builds differ (%d and %d bytes)", len(b1), len(b2))
	}
	// An independent reader: Python's zipfile checks every member's CRC
	// (and copes with the shebang before the zip).
	if out, err := exec.Command(testutil.Python(t, "3.11"), "-m", "zipfile", "-t", p1).CombinedOutput(); err != nil {
		t.Errorf("python -m zipfile -t: %v\n%s", err, out)
	}
	if !bytes.HasPrefix(b1, []byte(DefaultShebang+"\n")) {
		t.Errorf("PEX does not start with the shebang: %q", b1[:40])
	}
	st, _ := os.Stat(p1)
	if st.Mode().Perm()&0o111 == 0 {
		t.Errorf("PEX is not executable: %v", st.Mode())
	}
	info := readInfo(t, p1)
	want := map[string]string{}
	for _, w := range f.wheels {
		want[w.Filename] = w.SHA256
	}
	if fmt.Sprint(info.Distributions) != fmt.Sprint(want) || info.EntryPoint != "b.app:main" ||
		fmt.Sprint(info.Requirements) != "[alpha==1.0 beta==2.0]" || fmt.Sprint(info.InterpreterConstraints) != "[==3.11.*]" ||
		len(info.PexHash) != 40 || len(info.CodeHash) != 64 {
		t.Errorf("PEX-INFO = %+v", info)
	}
	// A change of the sources changes code_hash and pex_hash.
	writeFile(t, filepath.Join(f.src, "job", "main.py"), "changed = 1\n")
	p3, _ := f.build(t, cfg())
	info3 := readInfo(t, p3)
	if info3.CodeHash == info.CodeHash || info3.PexHash == info.PexHash {
		t.Errorf("changed sources kept code_hash/pex_hash")
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	bad := []*Config{
		{},
		{Environment: "environment.x", PythonVersion: ">=three"},
		{Environment: "environment.x", EntryPoint: "pkg.mod:"},
		{Environment: "environment.x", EntryPoint: "1pkg"},
		{Environment: "environment.x", Shebang: "/usr/bin/python"},
		{Environment: "environment.x", Output: "../x.pex"},
		{Environment: "environment.x", Sources: "missing"},
		{Environment: "environment.x", Level: 12},
	}
	for _, c := range bad {
		if err := New().Validate(c, base); err == nil {
			t.Errorf("Validate(%+v) accepted it", c)
		}
	}
	good := &Config{Environment: "environment.x", EntryPoint: "pkg.mod:main.run", PythonVersion: "CPython>=3.10,<3.13"}
	if err := New().Validate(good, base); err != nil {
		t.Errorf("Validate(%+v): %v", good, err)
	}
}

// TestOtherInterpreters runs the bootstrap on the oldest and newest
// interpreters it supports, and on Python 2.7 (which only needs to be told
// clearly when it is refused, but runs an unconstrained PEX as well).
func TestOtherInterpreters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, v := range []string{"2.7", "3.6", "3.13"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			py := testutil.Python(t, v)
			pexPath, _ := f.build(t, &Config{Shebang: "#!" + py})
			env := []string{"PEX_ROOT=" + t.TempDir()}
			out, stderr, code := execPex(t, pexPath, run{args: []string{"-c", "import b; print(b.g())"}, env: env})
			if code != 0 || out != "beta-g:alpha-f\n" {
				t.Errorf("-c: exit %d, %q, %s", code, out, stderr)
			}
			if v == "2.7" {
				return
			}
			out, stderr, code = execPex(t, pexPath, run{args: []string{"-m", "pyspark.daemon"}, env: env})
			if code != 0 || out != "daemon beta-g:alpha-f True\n" {
				t.Errorf("-m pyspark.daemon: exit %d, %q, %s", code, out, stderr)
			}
		})
	}
}

func TestModuleEntryPoint(t *testing.T) {
	t.Parallel()
	py := testutil.Python(t, "3.11")
	f := newFixture(t)
	pexPath, _ := f.build(t, &Config{EntryPoint: "b", Shebang: "#!" + py})
	out, stderr, code := execPex(t, pexPath, run{args: []string{"x"}, env: []string{"PEX_ROOT=" + t.TempDir()}})
	if code != 0 || out != "b-main beta-g:alpha-f ['x']\n" {
		t.Errorf("exit %d, %q, %s", code, out, stderr)
	}
}

func writeZipFile(t *testing.T, p string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(data))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, buf.String())
}

func TestDecodeHCL(t *testing.T) {
	t.Parallel()
	src := `
environment    = "environment.etl"
entry_point    = "pkg.mod:main"
python_version = ">=3.10,<3.13"
output         = "job.pex"
`
	f, diags := hclparse.NewParser().ParseHCL([]byte(src), "env.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	cfg := New().NewConfig()
	if diags := gohcl.DecodeBody(f.Body, nil, cfg); diags.HasErrors() {
		t.Fatal(diags)
	}
	want := &Config{Environment: "environment.etl", EntryPoint: "pkg.mod:main", PythonVersion: ">=3.10,<3.13", Output: "job.pex"}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("decoded %+v, want %+v", cfg, want)
	}
}
