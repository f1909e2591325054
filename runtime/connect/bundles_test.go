package connect_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/condapack"
	"github.com/sparkenv/sparkenv/builders/pex"
	"github.com/sparkenv/sparkenv/builders/pex/pextest"
	"github.com/sparkenv/sparkenv/builders/pyfiles"
	"github.com/sparkenv/sparkenv/internal/execx"
	"github.com/sparkenv/sparkenv/internal/testutil"
	"github.com/sparkenv/sparkenv/internal/testutil/condatest"
	"github.com/sparkenv/sparkenv/runtime/connect"
	"github.com/sparkenv/sparkenv/runtime/connect/connecttest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	condatest.Cleanup()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// realBundle is what sparkenv builds for a Spark Connect session: a
// conda_pack environment, py-files zips and a PEX, made by the real
// builders.
type realBundle struct {
	env     connect.Artifact   // archives/etl-<d12>.tar.gz#environment
	pyfiles []connect.Artifact // pyfiles/<name>-<d12>.zip
	pex     connect.Artifact   // files/job-<d12>.pex
	python  string             // the node's python3.11, which the PEX runs on
}

func (b *realBundle) all() []connect.Artifact {
	return slices.Concat([]connect.Artifact{b.env}, b.pyfiles, []connect.Artifact{b.pex})
}

// built holds the bundles, built once per test binary (also under
// -count=N) in a directory TestMain removes.
var built struct {
	once sync.Once
	dir  string
	b    *realBundle
}

// pyfileSources are the three py-files targets: report needs the other two
// and the environment's wordcount, so the worker below only succeeds when
// everything arrived and sits where Spark puts it.
var pyfileSources = map[string]map[string]string{
	"tokens": {"tokens/__init__.py": "def words(lines):\n    return [w for l in lines for w in l.split()]\n"},
	"tagger": {"tagger/__init__.py": "def tag(ws):\n    return ['x' + w for w in ws]\n"},
	"report": {"report/__init__.py": "import wordcount\nfrom tokens import words\nfrom tagger import tag\n\n" +
		"def run(lines):\n    return sorted(wordcount.count([' '.join(tag(words(lines)))]).items())\n"},
}

func realBundles(t *testing.T) *realBundle {
	t.Helper()
	// What the builds need; checked outside the Once so that a missing
	// tool skips every caller alike.
	py := testutil.Python(t, "3.11")
	testutil.Tool(t, "gcc")
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "sparkenv-connect-bundles-")
		if err != nil {
			t.Fatal(err)
		}
		built.dir = dir
		built.b = buildRealBundles(t, dir, py)
	})
	if built.b == nil {
		t.Fatal("the bundles could not be built (see the first test that tried)")
	}
	return built.b
}

func build(t *testing.T, b builders.Builder, dir, name string, cfg any, baseDir string, inputs ...builders.Input) string {
	t.Helper()
	out := filepath.Join(dir, "out", b.Kind()+"-"+name)
	tmp := filepath.Join(dir, "tmp", b.Kind()+"-"+name)
	for _, d := range []string{out, tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	defer os.RemoveAll(tmp)
	var log bytes.Buffer
	pkgs := filepath.Join(dir, "wheel-cache")
	if b.Kind() == condapack.Kind {
		pkgs = condatest.PkgsDir(t)
	}
	req := &builders.Request{
		Address: "target." + b.Kind() + "." + name, Name: name, Config: cfg, BaseDir: baseDir,
		Inputs: inputs, OutDir: out, TempDir: tmp, Log: &log,
		Runner: &execx.Runner{Env: os.Environ()}, PackageCacheDir: pkgs, Jobs: 2,
	}
	res, err := b.Build(context.Background(), req)
	if err != nil {
		t.Fatalf("%s: %v\n%s", req.Address, err, log.String())
	}
	return filepath.Join(out, res.Metadata["main"])
}

func buildRealBundles(t *testing.T, dir, py string) *realBundle {
	t.Helper()
	rb := &realBundle{python: py}

	res := condatest.Locked(t, "etl", "/opt/conda", "python 3.11.*", "wordcount")
	envIn := condatest.Input(t, res)
	p := build(t, condapack.New(), dir, "etl", &condapack.Config{Environment: envIn.Address}, dir, envIn)
	rb.env = artifactCA(t, connect.ArchiveName(p, condapack.DefaultAlias), p)

	for _, name := range []string{"report", "tagger", "tokens"} {
		src := filepath.Join(dir, "src", name)
		for rel, code := range pyfileSources[name] {
			writeFile(t, src, filepath.FromSlash(rel), []byte(code), 0o644)
		}
		p := build(t, pyfiles.New(), dir, name, &pyfiles.Config{Source: src}, dir)
		rb.pyfiles = append(rb.pyfiles, artifactCA(t, connect.PyFileName(p), p))
	}

	wheels := pextest.Wheels(t, filepath.Join(dir, "wheels"), pextest.Pair()...)
	pexIn := pextest.EnvInput(t, "job", wheels)
	p = build(t, pex.New(), dir, "job", &pex.Config{Environment: pexIn.Address, PythonVersion: "3.11"}, dir, pexIn)
	rb.pex = artifactCA(t, connect.FileName(p), p)
	return rb
}

// TestPushRealBundles pushes real bundles into a session of both server
// flavours, checks how they travelled, then runs what the session's Python
// workers would run, from the session's directory.
func TestPushRealBundles(t *testing.T) {
	b := realBundles(t)
	if b.env.Size <= 1<<20 {
		t.Fatalf("the conda_pack archive has %d bytes; this test needs more than 1 MiB to cover chunking", b.env.Size)
	}
	forEachMode(t, func(t *testing.T, mode connecttest.Mode) {
		srv := connecttest.Start(t, connecttest.Config{Mode: mode})
		const user = "carol"
		s := connect.Session{ID: connect.NewSessionID(), UserID: user}
		c := dial(t, srv.URL("user_id="+user))
		res, err := connect.Push(ctx(t), c, s, b.all()...)
		if err != nil {
			t.Fatal(err)
		}
		if errs := srv.UnpackErrors(); len(errs) != 0 {
			t.Fatalf("unpack: %v", errs)
		}
		logs := srv.Streams()
		if len(logs) != 1 || logs[0].Err != nil || res.Streams != 1 {
			t.Fatalf("want one successful stream, got %d (client counted %d): %+v", len(logs), res.Streams, logs)
		}
		checkTransport(t, b, logs[0])
		kinds := map[string]int{}
		for _, r := range logs[0].Requests {
			kinds[r.Kind]++
		}
		t.Logf("pushed %s (%d bytes), %d pyfiles, %s (%d bytes) in %d requests: %v", b.env.Name, b.env.Size, len(b.pyfiles), b.pex.Name, b.pex.Size, res.Requests, kinds)
		for _, a := range b.all() {
			sameFile(t, stored(srv, s, a.Name), a.Path)
		}

		cwd := srv.SessionDir(user, s.ID)
		runWorkers(t, b, cwd)

		// Pushing the same bundle again is a success that changes nothing.
		before := srv.Names(user, s.ID)
		res2, err := connect.Push(ctx(t), c, s, b.all()...)
		if err != nil {
			t.Fatalf("re-push on %s: %v", mode, err)
		}
		for _, a := range res2.Artifacts {
			if a.AlreadyPresent != (mode == connecttest.Mode35) {
				t.Errorf("re-push of %s on %s: AlreadyPresent = %v", a.Name, mode, a.AlreadyPresent)
			}
		}
		if after := srv.Names(user, s.ID); !slices.Equal(after, before) {
			t.Errorf("re-push changed the session: %v -> %v", before, after)
		}
		for _, a := range b.all() {
			sameFile(t, stored(srv, s, a.Name), a.Path)
		}
		if errs := srv.UnpackErrors(); len(errs) != 0 {
			t.Fatalf("unpack after re-push: %v", errs)
		}
		runWorkers(t, b, cwd)
	})
}

// checkTransport checks what the server saw: the archive as one
// begin_chunk followed by its chunks, the small py-files together in one
// batch, every artifact acknowledged.
func checkTransport(t *testing.T, b *realBundle, log connecttest.StreamLog) {
	t.Helper()
	reqs := log.Requests
	wantChunks := (b.env.Size + connect.ChunkSize - 1) / connect.ChunkSize
	start := slices.IndexFunc(reqs, func(r connecttest.Request) bool {
		return r.Kind == "begin_chunk" && len(r.Names) == 1 && r.Names[0] == b.env.Name
	})
	if start < 0 {
		t.Fatalf("no begin_chunk for %s in %+v", b.env.Name, reqs)
	}
	if r := reqs[start]; r.NumChunks != wantChunks || r.TotalBytes != b.env.Size || r.DataBytes != connect.ChunkSize {
		t.Fatalf("begin_chunk = %+v, want %d chunks, %d bytes, a full first chunk", r, wantChunks, b.env.Size)
	}
	var got int64 = 1
	var sent int64 = int64(reqs[start].DataBytes)
	for _, r := range reqs[start+1:] {
		if r.Kind != "chunk" {
			break
		}
		got++
		sent += int64(r.DataBytes)
	}
	if got != wantChunks || sent != b.env.Size {
		t.Fatalf("archive arrived in %d messages with %d bytes, want %d with %d", got, sent, wantChunks, b.env.Size)
	}

	var pyNames []string
	for _, a := range b.pyfiles {
		if a.Size > connect.ChunkSize/4 {
			t.Fatalf("pyfile %s has %d bytes: too big to show batching", a.Name, a.Size)
		}
		pyNames = append(pyNames, a.Name)
	}
	shared := false
	for _, r := range reqs {
		if r.Kind == "batch" && r.DataBytes > connect.ChunkSize {
			t.Errorf("a batch carries %d bytes, more than a chunk", r.DataBytes)
		}
		n := 0
		for _, name := range r.Names {
			if slices.Contains(pyNames, name) {
				n++
			}
		}
		if r.Kind == "batch" && n == len(pyNames) {
			shared = true
		}
		if n > 0 && r.Kind != "batch" {
			t.Errorf("pyfile sent in a %s request: %+v", r.Kind, r)
		}
	}
	if !shared {
		t.Errorf("the pyfiles %v did not share one batch request: %+v", pyNames, reqs)
	}

	var acked []string
	for _, sm := range log.Summaries {
		if !sm.CRCOK {
			t.Errorf("%s: CRC failed on the server", sm.Name)
		}
		acked = append(acked, sm.Name)
	}
	for _, a := range b.all() {
		if !slices.Contains(acked, a.Name) {
			t.Errorf("%s was not acknowledged: %v", a.Name, acked)
		}
	}
}

// runWorkers does what a Python worker of the session does: start in the
// session directory, with the interpreter the conf names and the pyfiles
// on sys.path.
func runWorkers(t *testing.T, b *realBundle, cwd string) {
	t.Helper()
	var pyPath []string
	for _, a := range b.pyfiles {
		_, file, _ := connect.SplitName(a.Name)
		pyPath = append(pyPath, filepath.Join(cwd, filepath.FromSlash(file)))
	}
	env := []string{
		// The node's python3 for the PEX; the archive brings its own.
		"PATH=" + filepath.Dir(b.python) + ":/usr/bin:/bin",
		"HOME=" + t.TempDir(), "LANG=C.UTF-8", "PYTHONNOUSERSITE=1",
		"PYTHONPATH=" + strings.Join(pyPath, ":"),
	}
	run := func(conf string, args ...string) string {
		t.Helper()
		// Workers resolve a relative interpreter against their working
		// directory.
		cmd := exec.Command(filepath.Join(cwd, conf), args...)
		cmd.Args[0] = conf
		cmd.Dir, cmd.Env = cwd, env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %q in %s: %v\n%s", conf, args, cwd, err, stderr.String())
		}
		return string(out)
	}

	key, interp := connect.PythonConf(b.env)
	if key != connect.PythonConfKey || interp != "environment/bin/python" {
		t.Fatalf("PythonConf(%s) = %s=%s", b.env.Name, key, interp)
	}
	i := slices.IndexFunc(b.pyfiles, func(a connect.Artifact) bool { return strings.HasPrefix(a.Name, "pyfiles/report-") })
	if i < 0 {
		t.Fatalf("no report pyfile among %v", b.pyfiles)
	}
	_, report, _ := connect.SplitName(b.pyfiles[i].Name)
	got := run(interp, "-c", "import sys, wordcount, report; print(sys.prefix); print(report.run(['b a', 'A'])); print(report.__file__)")
	want := fmt.Sprintf("%s\n[('xa', 2), ('xb', 1)]\n%s\n", filepath.Join(cwd, "environment"), filepath.Join(cwd, report, "report", "__init__.py"))
	if got != want {
		t.Errorf("environment worker printed %q, want %q", got, want)
	}

	key, pexConf := connect.PythonConf(b.pex)
	_, pexFile, _ := connect.SplitName(b.pex.Name)
	if key != connect.PythonConfKey || pexConf != "./"+pexFile {
		t.Fatalf("PythonConf(%s) = %s=%s", b.pex.Name, key, pexConf)
	}
	got = run(pexConf, "-c", "import sys, b, tokens; print('%d.%d' % sys.version_info[:2]); print(b.g()); print(tokens.words(['x y']))")
	if want := "3.11\nbeta-g:alpha-f\n['x', 'y']\n"; got != want {
		t.Errorf("PEX worker printed %q, want %q", got, want)
	}
	if got := run(pexConf, "-m", "pyspark.daemon"); got != "daemon beta-g:alpha-f True\n" {
		t.Errorf("PEX started as Spark starts its daemon printed %q", got)
	}
}
