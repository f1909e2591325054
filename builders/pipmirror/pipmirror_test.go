package pipmirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/pip"
	"github.com/sparkenv/sparkenv/internal/testutil"
	"github.com/sparkenv/sparkenv/internal/wheel/wheeltest"
	"github.com/sparkenv/sparkenv/publishers"
)

// source serves wheels the way an upstream index would and returns them
// locked: a needs b and c; b is a CPython 3.11 manylinux wheel; d is
// locked by the second environment only; c by both.
func source(t *testing.T) (etl, ml []lock.Wheel, dir string) {
	t.Helper()
	dir = t.TempDir()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	specs := map[string]wheeltest.Spec{
		"a": {Name: "a", Version: "1.0", RequiresDist: []string{"b>=1", "Cee.Pkg"}, Files: map[string]string{"a/__init__.py": "from b import B\nV = 'a' + B\n"}},
		"b": {Name: "b", Version: "2.0", Tag: "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64", Files: map[string]string{"b/__init__.py": "B = 'b'\n"}},
		"c": {Name: "Cee.Pkg", Version: "0.3", RequiresPython: ">=3.8, <4", Files: map[string]string{"cee_pkg/__init__.py": "\n"},
			EntryPoints: "[console_scripts]\ncee = cee_pkg:main\n"},
		"d": {Name: "d", Version: "1.0", Files: map[string]string{"d.py": "\n"}},
	}
	locked := map[string]lock.Wheel{}
	for k, s := range specs {
		p, err := wheeltest.Write(dir, s)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		sum := sha256.Sum256(b)
		locked[k] = lock.Wheel{Name: k, Version: s.Version, Filename: filepath.Base(p), URL: srv.URL + "/" + filepath.Base(p),
			SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b))}
	}
	return []lock.Wheel{locked["a"], locked["b"], locked["c"]}, []lock.Wheel{locked["c"], locked["d"]}, dir
}

func envInput(t *testing.T, name string, wheels []lock.Wheel) builders.Input {
	t.Helper()
	dir := t.TempDir()
	r := lock.Resolved{Name: name, Prefix: "/opt/conda", Environment: &lock.Environment{Platform: "linux-64", Pip: wheels}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, lock.ResolvedFileName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return builders.Input{Address: "environment." + name, Kind: "environment", Name: name, Dir: dir}
}

func build(t *testing.T, cache string, inputs []builders.Input, envs ...string) (string, *builders.Result, error) {
	t.Helper()
	out := t.TempDir()
	res, err := New().Build(context.Background(), &builders.Request{
		Address: "target.pip_mirror.wheels", Name: "wheels", Config: &Config{Environments: envs},
		Inputs: inputs, OutDir: out, TempDir: t.TempDir(), PackageCacheDir: cache,
	})
	return out, res, err
}

func TestBuildServesPip(t *testing.T) {
	t.Parallel()
	py := testutil.Python(t, "3.11")
	etl, ml, _ := source(t)
	inputs := []builders.Input{envInput(t, "etl", etl), envInput(t, "ml", ml)}
	cache := t.TempDir()
	out, res, err := build(t, cache, inputs, "environment.etl", "environment.ml")
	if err != nil {
		t.Fatal(err)
	}
	if res.Metadata[publishers.MetaLayout] != "tree" || res.Metadata[publishers.MetaMutable] != "index.html,index.json" || res.Metadata["wheels"] != "4" {
		t.Fatalf("metadata %v", res.Metadata)
	}
	// byte-identical to the locked files
	for _, w := range append(etl, ml...) {
		b, err := os.ReadFile(filepath.Join(out, "packages", w.Filename))
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != w.SHA256 {
			t.Errorf("%s differs from the lock", w.Filename)
		}
	}
	for _, p := range []string{"simple/index.html", "simple/index.json", "simple/cee-pkg/index.html", "simple/cee-pkg/index.json", "simple/a/index.html", "simple/d/index.json"} {
		if _, err := os.Stat(filepath.Join(out, p)); err != nil {
			t.Error(err)
		}
	}
	page, _ := os.ReadFile(filepath.Join(out, "simple/cee-pkg/index.html"))
	if !bytes.Contains(page, []byte(`data-requires-python="&gt;=3.8, &lt;4"`)) || !bytes.Contains(page, []byte("#sha256="+etl[2].SHA256)) {
		t.Errorf("project page:\n%s", page)
	}
	var pj struct {
		Meta  map[string]string `json:"meta"`
		Name  string            `json:"name"`
		Files []struct {
			Filename       string            `json:"filename"`
			URL            string            `json:"url"`
			Hashes         map[string]string `json:"hashes"`
			RequiresPython string            `json:"requires-python"`
			CoreMetadata   map[string]string `json:"core-metadata"`
		} `json:"files"`
	}
	jb, _ := os.ReadFile(filepath.Join(out, "simple/cee-pkg/index.json"))
	if err := json.Unmarshal(jb, &pj); err != nil {
		t.Fatal(err)
	}
	if pj.Meta["api-version"] != "1.1" || pj.Name != "cee-pkg" || len(pj.Files) != 1 || pj.Files[0].Hashes["sha256"] != etl[2].SHA256 ||
		pj.Files[0].RequiresPython != ">=3.8, <4" || pj.Files[0].CoreMetadata["sha256"] == "" {
		t.Errorf("project JSON: %s", jb)
	}

	srv := httptest.NewServer(http.FileServer(http.Dir(out)))
	defer srv.Close()
	tmp := t.TempDir()
	env := []string{"PIP_CONFIG_FILE=/dev/null", "PIP_DISABLE_PIP_VERSION_CHECK=1", "HOME=" + tmp, "PATH=/usr/bin:/bin"}
	target := filepath.Join(tmp, "target")
	cmd := exec.Command(py, "-m", "pip", "install", "--no-cache-dir", "--index-url", srv.URL+"/simple", "--target", target, "a")
	cmd.Env = env
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pip install: %v\n%s", err, o)
	}
	cmd = exec.Command(py, "-c", "import a, cee_pkg; print(a.V)")
	cmd.Env = append(env, "PYTHONPATH="+target)
	if o, err := cmd.CombinedOutput(); err != nil || string(o) != "ab\n" {
		t.Fatalf("import: %v %q", err, o)
	}
	dl := filepath.Join(tmp, "dl")
	cmd = exec.Command(py, "-m", "pip", "download", "--no-cache-dir", "--index-url", srv.URL+"/simple", "--dest", dl, "a", "d")
	cmd.Env = env
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pip download: %v\n%s", err, o)
	}
	for _, w := range append(etl, ml[1]) {
		if b, err := os.ReadFile(filepath.Join(dl, w.Filename)); err != nil {
			t.Error(err)
		} else if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != w.SHA256 {
			t.Errorf("pip downloaded another %s", w.Filename)
		}
	}
	// a server doing PEP 691 content negotiation serves index.json to pip,
	// which installs from the JSON form just as well
	var jsonServed int
	var mu sync.Mutex
	files := http.FileServer(http.Dir(out))
	neg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") && strings.Contains(r.Header.Get("Accept"), "application/vnd.pypi.simple.v1+json") {
			b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(r.URL.Path), "index.json"))
			if err == nil {
				mu.Lock()
				jsonServed++
				mu.Unlock()
				w.Header().Set("Content-Type", "application/vnd.pypi.simple.v1+json")
				w.Write(b)
				return
			}
		}
		files.ServeHTTP(w, r)
	}))
	defer neg.Close()
	target2 := filepath.Join(tmp, "target2")
	cmd = exec.Command(py, "-m", "pip", "install", "--no-cache-dir", "--index-url", neg.URL+"/simple", "--target", target2, "a")
	cmd.Env = env
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pip install with the JSON API: %v\n%s", err, o)
	}
	if _, err := os.Stat(filepath.Join(target2, "cee_pkg", "__init__.py")); err != nil || jsonServed < 3 {
		t.Errorf("JSON API install: %v, %d JSON pages served", err, jsonServed)
	}
	// a copy of the tree on disk works as an index too (pip reads the
	// index.html of a file:// directory)
	dl2 := filepath.Join(tmp, "dl2")
	cmd = exec.Command(py, "-m", "pip", "download", "--no-cache-dir", "--index-url", "file://"+filepath.Join(out, "simple"), "--dest", dl2, "a")
	cmd.Env = env
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pip download from file://: %v\n%s", err, o)
	}
	if ents, _ := os.ReadDir(dl2); len(ents) != 3 {
		t.Errorf("pip downloaded %d files from the file:// index, want 3", len(ents))
	}
	// sparkenv's own resolver locks the same files from the mirror
	got, err := pip.Resolve(context.Background(), pip.Request{Requirements: []string{"a", "d"}, IndexURL: srv.URL + "/simple",
		Target: pip.Target{Platform: "linux-64", Glibc: "2.17", PythonVersion: "3.11"}, Pip: []string{py, "-m", "pip"}, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, w := range append(etl, ml[1]) {
		want[w.Filename] = w.SHA256
	}
	if len(got) != 4 {
		t.Fatalf("resolved %v", got)
	}
	for _, w := range got {
		if want[w.Filename] != w.SHA256 || w.URL != srv.URL+"/packages/"+w.Filename {
			t.Errorf("resolved %+v", w)
		}
	}
}

func TestBuildDeterministic(t *testing.T) {
	t.Parallel()
	etl, ml, _ := source(t)
	inputs := []builders.Input{envInput(t, "etl", etl), envInput(t, "ml", ml)}
	var digests []string
	for i := 0; i < 2; i++ {
		out, _, err := build(t, t.TempDir(), inputs, "environment.etl", "environment.ml")
		if err != nil {
			t.Fatal(err)
		}
		m, err := artifact.Scan(out)
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, m.Digest())
	}
	if digests[0] != digests[1] {
		t.Fatalf("two builds differ: %v", digests)
	}
}

func TestBuildRefuses(t *testing.T) {
	t.Parallel()
	etl, ml, srcDir := source(t)
	// two environments locking different files under one name
	other := append([]lock.Wheel(nil), ml...)
	other[0].SHA256 = strings.Repeat("1", 64)
	_, _, err := build(t, t.TempDir(), []builders.Input{envInput(t, "etl", etl), envInput(t, "ml", other)}, "environment.etl", "environment.ml")
	if err == nil || !strings.Contains(err.Error(), "lock different files named "+ml[0].Filename) {
		t.Errorf("conflict: %v", err)
	}
	// a file that no longer matches its lock
	if err := os.WriteFile(filepath.Join(srcDir, ml[1].Filename), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = build(t, t.TempDir(), []builders.Input{envInput(t, "ml", ml)}, "environment.ml")
	if err == nil || !strings.Contains(err.Error(), ml[1].Filename) {
		t.Errorf("changed upstream file: %v", err)
	}
	// configuration
	for _, c := range []*Config{{}, {Environments: []string{"target.x"}}, {Environments: []string{"environment.a", "environment.a"}}} {
		if err := New().Validate(c, ""); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	// an environment that is not an input
	if _, _, err := build(t, t.TempDir(), nil, "environment.etl"); err == nil || !strings.Contains(err.Error(), "environment.etl") {
		t.Errorf("missing input: %v", err)
	}
}
