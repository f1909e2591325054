package planner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/publishers"
	"github.com/sparkenv/sparkenv/spec"
)

// fakeBuilder counts its executions. Its output is `content` plus the
// contents of its dependencies' out.txt when `concat` is set, so a test
// can decide whether an input change reaches the output.
type fakeBuilder struct {
	mu     sync.Mutex
	count  map[string]int
	during func() // called in the middle of every build, when set
}

type fakeConfig struct {
	Content string   `hcl:"content"`
	Inputs  []string `hcl:"inputs,optional"`
	After   []string `hcl:"after,optional"`
	Concat  bool     `hcl:"concat,optional"`
	Fail    bool     `hcl:"fail,optional"`
	Jobs    int      `hcl:"jobs,optional" key:"-"`
}

func (f *fakeBuilder) Kind() string    { return "fake" }
func (f *fakeBuilder) Version() string { return "1" }
func (f *fakeBuilder) NewConfig() any  { return &fakeConfig{} }

func (f *fakeBuilder) Inputs(cfg any, base string) ([]string, error) {
	var out []string
	for _, p := range cfg.(*fakeConfig).Inputs {
		out = append(out, filepath.Join(base, p))
	}
	return out, nil
}

func (f *fakeBuilder) Build(ctx context.Context, req *builders.Request) (*builders.Result, error) {
	f.mu.Lock()
	f.count[req.Address]++
	f.mu.Unlock()
	c := req.Config.(*fakeConfig)
	if f.during != nil {
		f.during()
	}
	if c.Fail {
		req.Log.Write([]byte("compiling...\nboom: the tool said no\n"))
		return nil, errors.New("the tool failed")
	}
	out := c.Content
	if c.Concat {
		for _, in := range req.Inputs {
			b, err := os.ReadFile(filepath.Join(in.Dir, "out.txt"))
			if err != nil {
				return nil, err
			}
			out += "+" + string(b)
		}
		for _, in := range req.InputFiles {
			b, err := os.ReadFile(in.Path)
			if err != nil {
				return nil, err
			}
			out += "|" + string(b)
		}
	}
	if err := os.WriteFile(filepath.Join(req.OutDir, "out.txt"), []byte(out), 0o644); err != nil {
		return nil, err
	}
	return &builders.Result{Metadata: map[string]string{"main": "out.txt"}}, nil
}

func (f *fakeBuilder) runs(addr string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count[addr]
}

func (f *fakeBuilder) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.count {
		n += c
	}
	return n
}

var _ builders.Builder = (*fakeBuilder)(nil)

type fixture struct {
	t   *testing.T
	dir string
	fb  *fakeBuilder
}

func newFixture(t *testing.T, files map[string]string) *fixture {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &fixture{t: t, dir: dir, fb: &fakeBuilder{count: map[string]int{}}}
}

func (fx *fixture) write(name, body string) {
	if err := os.WriteFile(filepath.Join(fx.dir, name), []byte(body), 0o644); err != nil {
		fx.t.Fatal(err)
	}
}

func (fx *fixture) executor() *Executor {
	fx.t.Helper()
	cfg, diags := spec.Load(spec.LoadOptions{Dir: fx.dir})
	if diags.HasErrors() {
		fx.t.Fatalf("load: %s", diags.Error())
	}
	g, diags := NewGraph(cfg, Registries{Builders: builders.NewRegistry(fx.fb), Publishers: publishers.NewRegistry()}, nil)
	if diags.HasErrors() {
		fx.t.Fatalf("graph: %s", diags.Error())
	}
	x, err := NewExecutor(g, Options{Jobs: 2})
	if err != nil {
		fx.t.Fatal(err)
	}
	return x
}

func (fx *fixture) build(addrs ...string) *Result {
	fx.t.Helper()
	res, err := fx.executor().Build(context.Background(), addrs)
	if err != nil {
		fx.t.Fatal(err)
	}
	return res
}

func (fx *fixture) read(p string) string {
	b, err := os.ReadFile(filepath.Join(fx.dir, p))
	if err != nil {
		fx.t.Fatal(err)
	}
	return string(b)
}

const chain = `
target "fake" "a" {
  content = "A"
  inputs  = ["a.txt"]
}
target "fake" "b" {
  content = "B"
  after   = [target.fake.a]
  concat  = true
}
target "fake" "c" {
  content = "C"
}
`

func TestNoopRebuildRunsNothing(t *testing.T) {
	fx := newFixture(t, map[string]string{"env.hcl": chain, "a.txt": "one"})
	res := fx.build()
	if got := res.Counts()[StatusBuilt]; got != 3 {
		t.Fatalf("first build: %d built, want 3", got)
	}
	if got := fx.read("dist/fake/b/out.txt"); got != "B+A" {
		t.Fatalf("b output = %q", got)
	}
	res = fx.build()
	if c := res.Counts(); c[StatusCached] != 3 || fx.fb.total() != 3 {
		t.Fatalf("no-op build ran builders: counts %v, runs %d", c, fx.fb.total())
	}
}

func TestInputChangeRebuildsOnlyDependents(t *testing.T) {
	fx := newFixture(t, map[string]string{"env.hcl": chain, "a.txt": "one"})
	fx.build()
	fx.write("a.txt", "two")
	// a's output ignores its input's bytes (concat is off), so a rebuilds
	// into identical bytes and b is not rebuilt: early cut-off.
	res := fx.build()
	if fx.fb.runs("target.fake.a") != 2 || fx.fb.runs("target.fake.b") != 1 || fx.fb.runs("target.fake.c") != 1 {
		t.Fatalf("runs a=%d b=%d c=%d", fx.fb.runs("target.fake.a"), fx.fb.runs("target.fake.b"), fx.fb.runs("target.fake.c"))
	}
	ar := res.Actions["target.fake.a"]
	if len(ar.Changes) != 1 || ar.Changes[0].String() != "input file a.txt changed" {
		t.Fatalf("reason = %v", ar.Changes)
	}
}

func TestOutputChangePropagates(t *testing.T) {
	fx := newFixture(t, map[string]string{"env.hcl": chain, "a.txt": "one"})
	fx.build()
	fx.write("env.hcl", strings.Replace(chain, `content = "A"`, `content = "A2"`, 1))
	plan, err := fx.executor().Plan(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Actions["target.fake.a"].Status != StatusBuild || plan.Actions["target.fake.b"].Status != StatusMaybe ||
		plan.Actions["target.fake.c"].Status != StatusCached {
		t.Fatalf("plan statuses: a=%s b=%s c=%s", plan.Actions["target.fake.a"].Status, plan.Actions["target.fake.b"].Status, plan.Actions["target.fake.c"].Status)
	}
	if got := plan.Actions["target.fake.a"].Changes[0].String(); got != `config attribute "content" changed` {
		t.Fatalf("reason = %q", got)
	}
	fx.build()
	if fx.fb.runs("target.fake.b") != 2 {
		t.Fatalf("b not rebuilt after a changed")
	}
	if got := fx.read("dist/fake/b/out.txt"); got != "B+A2" {
		t.Fatalf("b output = %q", got)
	}
}

func TestUnkeyedAttributeDoesNotRebuild(t *testing.T) {
	fx := newFixture(t, map[string]string{"env.hcl": `target "fake" "a" { content = "A" }`})
	fx.build()
	fx.write("env.hcl", `target "fake" "a" {
  content = "A"
  jobs    = 7
}`)
	fx.build()
	if fx.fb.runs("target.fake.a") != 1 {
		t.Fatalf("an attribute tagged key:\"-\" caused a rebuild")
	}
}

func TestFailureSkipsDependentsAndReportsRootCause(t *testing.T) {
	fx := newFixture(t, map[string]string{"env.hcl": strings.Replace(chain, `inputs  = ["a.txt"]`, `inputs  = ["a.txt"]
  fail = true`, 1), "a.txt": "one"})
	res := fx.build()
	if res.Actions["target.fake.a"].Status != StatusFailed || res.Actions["target.fake.b"].Status != StatusSkipped ||
		res.Actions["target.fake.c"].Status != StatusBuilt {
		t.Fatalf("statuses: %v", res.Counts())
	}
	roots := res.RootCauses()
	if len(roots) != 1 || roots[0].Address != "target.fake.a" {
		t.Fatalf("root causes: %v", roots)
	}
	if !strings.Contains(roots[0].LogTail, "boom: the tool said no") {
		t.Fatalf("log tail = %q", roots[0].LogTail)
	}
	if roots[0].Range.Start.Line != 2 {
		t.Fatalf("range = %v", roots[0].Range)
	}
	if fx.fb.runs("target.fake.b") != 0 {
		t.Fatalf("dependent of a failed action ran")
	}
}

func TestCorruptedObjectIsRebuilt(t *testing.T) {
	fx := newFixture(t, map[string]string{"env.hcl": `target "fake" "a" { content = "AAAA" }`})
	res := fx.build()
	rec := res.Actions["target.fake.a"].Record
	obj := fx.executor().Store().objectPath(rec.Manifest.Files[0].SHA256, false)
	os.Chmod(obj, 0o644)
	if err := os.WriteFile(obj, []byte("BBBB"), 0o644); err != nil {
		t.Fatal(err)
	}
	res = fx.build()
	if res.Actions["target.fake.a"].Status != StatusBuilt || fx.fb.runs("target.fake.a") != 2 {
		t.Fatalf("corrupted object was served: status %s", res.Actions["target.fake.a"].Status)
	}
	if got := fx.read("dist/fake/a/out.txt"); got != "AAAA" {
		t.Fatalf("dist = %q", got)
	}
}

func TestCycleIsOneDiagnosticNamingEveryNode(t *testing.T) {
	fx := newFixture(t, map[string]string{"env.hcl": `
target "fake" "a" {
  content = "a"
  after = [target.fake.c]
}
target "fake" "b" {
  content = "b"
  after = [target.fake.a]
}
target "fake" "c" {
  content = "c"
  depends_on = [target.fake.b]
}
target "fake" "d" { content = "d" }
`})
	cfg, diags := spec.Load(spec.LoadOptions{Dir: fx.dir})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	_, diags = NewGraph(cfg, Registries{Builders: builders.NewRegistry(fx.fb), Publishers: publishers.NewRegistry()}, nil)
	if len(diags) != 1 {
		t.Fatalf("want one diagnostic, got %v", diags)
	}
	want := "target.fake.a → target.fake.c → target.fake.b → target.fake.a"
	if !strings.Contains(diags[0].Detail, want) {
		t.Fatalf("detail %q does not contain %q", diags[0].Detail, want)
	}
	if diags[0].Subject.Start.Line != 2 {
		t.Fatalf("subject %v", diags[0].Subject)
	}
}

func TestConcurrentBuildsBothSucceed(t *testing.T) {
	fx := newFixture(t, map[string]string{"env.hcl": chain, "a.txt": "one"})
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := fx.executor().Build(context.Background(), nil)
			if err != nil || len(res.RootCauses()) > 0 {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatal("a concurrent build failed")
	}
	if fx.fb.total() != 3 {
		t.Fatalf("builders ran %d times; the second build should have reused the first's results", fx.fb.total())
	}
}

func TestSelectionBuildsClosureOnly(t *testing.T) {
	fx := newFixture(t, map[string]string{"env.hcl": chain, "a.txt": "one"})
	fx.build("target.fake.b")
	if fx.fb.runs("target.fake.c") != 0 || fx.fb.runs("target.fake.a") != 1 {
		t.Fatal("selection built the wrong set")
	}
	if _, err := fx.executor().Build(context.Background(), []string{"target.fake.bb"}); err == nil || !strings.Contains(err.Error(), `did you mean "target.fake.b"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestRenamedTargetRebuilds(t *testing.T) {
	fx := newFixture(t, map[string]string{"env.hcl": `target "fake" "a" { content = "A" }`})
	fx.build()
	fx.write("env.hcl", `target "fake" "b" { content = "A" }`)
	res := fx.build()
	ar := res.Actions["target.fake.b"]
	if ar.Status != StatusBuilt || fx.fb.runs("target.fake.b") != 1 {
		t.Fatalf("a renamed block was served from the old name's cache: %s", ar.Status)
	}
}

// cp -p and reproducible archives keep mtime and size while changing the
// bytes: the stat cache must still notice (by ctime).
func TestRewriteKeepingMtimeAndSizeRebuilds(t *testing.T) {
	fx := newFixture(t, map[string]string{"env.hcl": `target "fake" "a" {
  content = "A"
  inputs  = ["in.txt"]
  concat  = true
}`, "in.txt": "one"})
	old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	p := filepath.Join(fx.dir, "in.txt")
	os.Chtimes(p, old, old)
	// Past the racy window, so that the digest is remembered by identity
	// and only the identity check can notice the rewrite.
	time.Sleep(2100 * time.Millisecond)
	fx.build()
	if err := os.WriteFile(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, old, old)
	fx.build()
	if got := fx.read("dist/fake/a/out.txt"); got != "A|two" {
		t.Fatalf("output %q: a same-size, same-mtime rewrite was not noticed", got)
	}
}

// A builder whose input changes while it runs must not store its output
// under the key of the old content.
func TestInputChangedDuringBuildFails(t *testing.T) {
	fx := newFixture(t, map[string]string{"env.hcl": `target "fake" "a" {
  content = "A"
  inputs  = ["in.txt"]
}`, "in.txt": "one"})
	fx.fb.during = func() {
		os.WriteFile(filepath.Join(fx.dir, "in.txt"), []byte("changed"), 0o644)
	}
	res := fx.build()
	ar := res.Actions["target.fake.a"]
	if ar.Status != StatusFailed || ar.Err == nil || !strings.Contains(ar.Err.Error(), "changed during the build") {
		t.Fatalf("status %s, err %v", ar.Status, ar.Err)
	}
	fx.fb.during = nil
	res = fx.build()
	if res.Actions["target.fake.a"].Status != StatusBuilt {
		t.Fatalf("the next build did not run: %s", res.Actions["target.fake.a"].Status)
	}
}

func TestOwnDirectoriesAreNotInputs(t *testing.T) {
	fx := newFixture(t, map[string]string{"env.hcl": `target "fake" "a" {
  content = "A"
  inputs  = [".sparkenv/statcache.json"]
}`})
	os.MkdirAll(filepath.Join(fx.dir, ".sparkenv"), 0o755)
	os.WriteFile(filepath.Join(fx.dir, ".sparkenv", "statcache.json"), []byte("{}"), 0o644)
	res := fx.build()
	ar := res.Actions["target.fake.a"]
	if ar.Status != StatusFailed || !strings.Contains(ar.Err.Error(), "sparkenv's own cache") {
		t.Fatalf("status %s, err %v", ar.Status, ar.Err)
	}
}
