package planner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"
	"github.com/hashicorp/hcl/v2"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/execx"
	"github.com/sparkenv/sparkenv/internal/fsutil"
	"github.com/sparkenv/sparkenv/publishers"
)

// Status is what happened, or would happen, to an action.
type Status string

const (
	StatusBuild   Status = "build"   // plan: would run
	StatusMaybe   Status = "maybe"   // plan: runs unless its dependencies rebuild into identical bytes
	StatusCached  Status = "cached"  // result taken from the cache
	StatusBuilt   Status = "built"   // ran and succeeded
	StatusFailed  Status = "failed"  // ran and failed
	StatusSkipped Status = "skipped" // not run because a dependency failed
	StatusBlocked Status = "blocked" // cannot run: a problem found before running (e.g. no lock)
)

// EventType tells a Reporter what happened.
type EventType string

const (
	EventStart  EventType = "start"
	EventFinish EventType = "finish"
	EventLog    EventType = "log"
)

// Event is one progress report. Finish events carry the final Status.
type Event struct {
	Type     EventType     `json:"type"`
	Address  string        `json:"address"`
	Kind     string        `json:"kind"`
	Status   Status        `json:"status,omitempty"`
	Key      string        `json:"key,omitempty"`
	Reasons  []string      `json:"reasons,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	Error    string        `json:"error,omitempty"`
	Line     string        `json:"line,omitempty"`
}

// Reporter receives events; it is called from several goroutines.
type Reporter interface{ Event(Event) }

// ReporterFunc adapts a function.
type ReporterFunc func(Event)

func (f ReporterFunc) Event(e Event) { f(e) }

// Options configure planning and execution.
type Options struct {
	CacheDir        string // the store; default <config dir>/.sparkenv
	DistDir         string // results; default <config dir>/dist
	PackageCacheDir string // shared conda/wheel package cache
	Jobs            int    // parallel actions; default the number of cores
	Environ         []string
	Offline         bool
	DryRun          bool // publishers report, write nothing
	Republish       bool // run publish actions even when cached
	Reporter        Reporter
	Tools           map[string]string // versions of external tools, mixed into keys
}

// ActionResult is the outcome of one action.
type ActionResult struct {
	Address  string
	Kind     string
	Class    Class
	Status   Status
	Key      string
	Preimage *Preimage
	Changes  []Change
	Record   *ActionRecord
	Err      error
	LogTail  string
	Range    hcl.Range
	Duration time.Duration
}

// Result is the outcome of a plan or a build.
type Result struct {
	Order   []string
	Actions map[string]*ActionResult
}

// RootCauses are the failed actions that are not skipped because of
// another failure, in order.
func (r *Result) RootCauses() []*ActionResult {
	var out []*ActionResult
	for _, a := range r.Order {
		ar := r.Actions[a]
		if ar.Status == StatusFailed || ar.Status == StatusBlocked {
			out = append(out, ar)
		}
	}
	return out
}

// Counts tallies statuses.
func (r *Result) Counts() map[Status]int {
	m := map[Status]int{}
	for _, ar := range r.Actions {
		m[ar.Status]++
	}
	return m
}

// Executor plans and runs a graph.
type Executor struct {
	g     *Graph
	opts  Options
	store *Store

	toolMu    sync.Mutex
	toolCache map[string]*toolEntry
}

// NewExecutor opens the store for g.
func NewExecutor(g *Graph, opts Options) (*Executor, error) {
	if opts.CacheDir == "" {
		opts.CacheDir = filepath.Join(g.Config.Dir, ".sparkenv")
	}
	if opts.DistDir == "" {
		opts.DistDir = filepath.Join(g.Config.Dir, "dist")
	}
	if opts.Jobs <= 0 {
		opts.Jobs = runtime.NumCPU()
	}
	if opts.Reporter == nil {
		opts.Reporter = ReporterFunc(func(Event) {})
	}
	st, err := OpenStore(opts.CacheDir)
	if err != nil {
		return nil, err
	}
	return &Executor{g: g, opts: opts, store: st}, nil
}

// Store returns the executor's store.
func (x *Executor) Store() *Store { return x.store }

// Preimage computes the pre-image of n given its dependencies' outputs.
func (x *Executor) Preimage(n *Node, deps map[string]string) (*Preimage, error) {
	p := &Preimage{Kind: n.Kind, Deps: deps, Tools: x.opts.Tools}
	if n.Class != ClassEnvironment {
		p.Address = n.Address
	}
	switch n.Class {
	case ClassEnvironment:
		p.Action, p.Version = actionEnvironment, "1"
		b, err := resolvedJSON(n.Resolved)
		if err != nil {
			return nil, err
		}
		p.Config = b
	case ClassTarget:
		p.Action, p.Version = actionBuild, n.Builder.Version()
		if tv, ok := n.Builder.(builders.ToolVersioner); ok {
			tools, err := x.toolVersions(n, tv)
			if err != nil {
				return nil, err
			}
			p.Tools = tools
		}
		cfg, err := NormalizeConfig(n.Config)
		if err != nil {
			return nil, fmt.Errorf("%s: config: %w", n.Address, err)
		}
		p.Config = cfg
		if n.inputErr != nil {
			return nil, fmt.Errorf("%s: inputs: %w", n.Address, n.inputErr)
		}
		p.Inputs = map[string]string{}
		for _, f := range n.InputFiles {
			if x.ownFile(f) {
				return nil, fmt.Errorf("%s: input %s is inside sparkenv's own cache or dist directory; exclude them from the target's sources (for example exclude = [\".sparkenv/**\", \"dist/**\"])", n.Address, x.relPath(f))
			}
			sum, err := x.store.stats.hash(f)
			if err != nil {
				return nil, fmt.Errorf("%s: input %s: %w", n.Address, f, err)
			}
			p.Inputs[x.relPath(f)] = sum
		}
	case ClassPublish:
		p.Action, p.Version = actionPublish, n.Publisher.Version()
		p.Place = n.BaseDir
		cfg, err := NormalizeConfig(n.Config)
		if err != nil {
			return nil, fmt.Errorf("%s: config: %w", n.Address, err)
		}
		p.Config = cfg
	}
	return p, nil
}

// toolVersions asks a builder once per run for the versions of the tools
// it runs, merged over the executor's own.
func (x *Executor) toolVersions(n *Node, tv builders.ToolVersioner) (map[string]string, error) {
	x.toolMu.Lock()
	if x.toolCache == nil {
		x.toolCache = map[string]*toolEntry{}
	}
	e := x.toolCache[n.Address]
	if e == nil {
		e = &toolEntry{}
		x.toolCache[n.Address] = e
	}
	x.toolMu.Unlock()
	e.once.Do(func() {
		got, err := tv.ToolVersions(context.Background(), n.Config)
		if err != nil {
			e.err = fmt.Errorf("%s: %w", n.Address, err)
			return
		}
		e.versions = map[string]string{}
		for k, v := range x.opts.Tools {
			e.versions[k] = v
		}
		for k, v := range got {
			e.versions[k] = v
		}
	})
	return e.versions, e.err
}

type toolEntry struct {
	once     sync.Once
	versions map[string]string
	err      error
}

// ownFile reports whether p is under the store or the dist directory, which
// change with every build and can never be inputs.
func (x *Executor) ownFile(p string) bool {
	for _, d := range []string{x.opts.CacheDir, x.opts.DistDir} {
		if rel, err := filepath.Rel(d, p); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return true
		}
	}
	return false
}

func (x *Executor) relPath(p string) string {
	if rel, err := filepath.Rel(x.g.Config.Dir, p); err == nil {
		return filepath.ToSlash(rel)
	}
	return p
}

func resolvedJSON(r *lock.Resolved) (json.RawMessage, error) {
	if r == nil {
		return json.RawMessage("null"), nil
	}
	return json.Marshal(r)
}

// Plan says what Build would do, without running or writing anything.
func (x *Executor) Plan(ctx context.Context, addrs []string) (*Result, error) {
	order, err := x.g.Closure(addrs)
	if err != nil {
		return nil, err
	}
	res := &Result{Order: order, Actions: map[string]*ActionResult{}}
	outputs := map[string]string{}
	for _, a := range order {
		n := x.g.Nodes[a]
		ar := &ActionResult{Address: a, Kind: n.Kind, Class: n.Class, Range: n.DeclRange}
		res.Actions[a] = ar
		if n.Class == ClassEnvironment && n.Resolved == nil {
			ar.Status, ar.Err = StatusBlocked, diagError(n.LockProblem)
			continue
		}
		deps := map[string]string{}
		unknown := ""
		for _, d := range n.Deps {
			dr := res.Actions[d]
			switch dr.Status {
			case StatusBlocked, StatusSkipped:
				ar.Status = StatusSkipped
			}
			if o, ok := outputs[d]; ok {
				deps[d] = o
			} else if unknown == "" {
				unknown = d
			}
		}
		if ar.Status == StatusSkipped {
			continue
		}
		if unknown != "" {
			ar.Status = StatusMaybe
			ar.Changes = []Change{{What: "dependency", Name: unknown, Old: "?", New: "rebuilt"}}
			continue
		}
		pre, err := x.Preimage(n, deps)
		if err != nil {
			ar.Status, ar.Err = StatusBlocked, err
			continue
		}
		ar.Key, ar.Preimage = pre.Key(), pre
		if rec, ok := x.store.Lookup(ar.Key); ok && !(n.Class == ClassPublish && x.opts.Republish) {
			ar.Status, ar.Record = StatusCached, rec
			outputs[a] = rec.Output
			continue
		}
		ar.Status = StatusBuild
		ar.Changes = Diff(x.store.Last(a), pre)
		if len(ar.Changes) == 0 {
			ar.Changes = []Change{{What: "missing", Name: "cache entry"}}
		}
	}
	return res, nil
}

func diagError(d *hcl.Diagnostic) error {
	if d == nil {
		return errors.New("blocked")
	}
	return fmt.Errorf("%s: %s", d.Summary, d.Detail)
}

// Build runs every action of the closure of addrs that is not cached, in
// parallel, and materializes the results into the dist directory. Another
// build of the same directory waits for this one (a file lock) and then
// reuses its results.
func (x *Executor) Build(ctx context.Context, addrs []string) (*Result, error) {
	order, err := x.g.Closure(addrs)
	if err != nil {
		return nil, err
	}
	fl := flock.New(filepath.Join(x.opts.CacheDir, "build.lock"))
	if err := fl.Lock(); err != nil {
		return nil, fmt.Errorf("lock %s: %w", fl.Path(), err)
	}
	defer fl.Unlock()
	if err := x.store.CleanTemp(); err != nil {
		return nil, err
	}
	x.store.reloadStats()
	defer x.store.Flush()
	// Half-swapped dist directories of an interrupted build.
	for _, pat := range []string{"*/.*.tmp-*", "publish/*/.*.tmp-*"} {
		left, _ := filepath.Glob(filepath.Join(x.opts.DistDir, pat))
		for _, d := range left {
			os.RemoveAll(d)
		}
	}

	res := &Result{Order: order, Actions: map[string]*ActionResult{}}
	for _, a := range order {
		n := x.g.Nodes[a]
		res.Actions[a] = &ActionResult{Address: a, Kind: n.Kind, Class: n.Class, Range: n.DeclRange}
	}
	s := &scheduler{x: x, res: res, order: order, outputs: map[string]string{}}
	s.run(ctx)
	if err := x.writeDistManifest(res); err != nil {
		return res, err
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("build interrupted: %w", context.Cause(ctx))
	}
	return res, nil
}

type scheduler struct {
	x       *Executor
	res     *Result
	order   []string
	mu      sync.Mutex
	outputs map[string]string
}

func (s *scheduler) run(ctx context.Context) {
	in := map[string]bool{}
	pending := map[string]int{}
	for _, a := range s.order {
		in[a] = true
	}
	for _, a := range s.order {
		for _, d := range s.x.g.Nodes[a].Deps {
			if in[d] {
				pending[a]++
			}
		}
	}
	type done struct{ addr string }
	ready := make(chan string, len(s.order))
	finished := make(chan done, len(s.order))
	for _, a := range s.order {
		if pending[a] == 0 {
			ready <- a
		}
	}
	sem := make(chan struct{}, s.x.opts.Jobs)
	remaining := len(s.order)
	var wg sync.WaitGroup
	for remaining > 0 {
		select {
		case a := <-ready:
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.runOne(ctx, a, sem)
				finished <- done{a}
			}()
		case d := <-finished:
			remaining--
			for _, dep := range s.x.g.Dependents[d.addr] {
				if !in[dep] {
					continue
				}
				pending[dep]--
				if pending[dep] == 0 {
					ready <- dep
				}
			}
		}
	}
	wg.Wait()
}

func (s *scheduler) runOne(ctx context.Context, a string, sem chan struct{}) {
	x := s.x
	n := x.g.Nodes[a]
	ar := s.res.Actions[a]
	finish := func() {
		x.opts.Reporter.Event(Event{Type: EventFinish, Address: a, Kind: n.Kind, Status: ar.Status, Key: ar.Key,
			Reasons: changeStrings(ar.Changes), Duration: ar.Duration, Error: errString(ar.Err)})
	}
	deps := map[string]string{}
	s.mu.Lock()
	for _, d := range n.Deps {
		o, ok := s.outputs[d]
		if !ok {
			ar.Status = StatusSkipped
		}
		deps[d] = o
	}
	s.mu.Unlock()
	if ar.Status == StatusSkipped || ctx.Err() != nil {
		ar.Status = StatusSkipped
		finish()
		return
	}
	if n.Class == ClassEnvironment && n.Resolved == nil {
		ar.Status, ar.Err = StatusBlocked, diagError(n.LockProblem)
		finish()
		return
	}
	pre, err := x.Preimage(n, deps)
	if err != nil {
		ar.Status, ar.Err = StatusFailed, err
		finish()
		return
	}
	ar.Key, ar.Preimage = pre.Key(), pre
	rec, ok := x.store.Lookup(ar.Key)
	if ok && !(n.Class == ClassPublish && x.opts.Republish) {
		ar.Status, ar.Record = StatusCached, rec
	} else {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			ar.Status = StatusSkipped
			finish()
			return
		}
		ar.Changes = Diff(x.store.Last(a), pre)
		x.opts.Reporter.Event(Event{Type: EventStart, Address: a, Kind: n.Kind, Key: ar.Key, Reasons: changeStrings(ar.Changes)})
		start := time.Now()
		rec, ar.LogTail, err = x.execute(ctx, n, pre, s.inputsOf(n))
		ar.Duration = time.Since(start)
		<-sem
		if err != nil {
			ar.Status, ar.Err = StatusFailed, err
			if ctx.Err() != nil {
				// Interrupted, not broken: the cause is reported once.
				ar.Status, ar.Err = StatusSkipped, nil
			}
			finish()
			return
		}
		ar.Status, ar.Record = StatusBuilt, rec
		if n.Class == ClassPublish && x.opts.DryRun {
			finish()
			return
		}
	}
	if last := x.store.Last(a); last == nil || last.Key() != ar.Key {
		if err := x.store.SaveLast(a, pre); err != nil {
			ar.Status, ar.Err = StatusFailed, err
			finish()
			return
		}
	}
	if err := x.materialize(n, ar.Record); err != nil {
		ar.Status, ar.Err = StatusFailed, err
		finish()
		return
	}
	s.mu.Lock()
	s.outputs[a] = ar.Record.Output
	s.mu.Unlock()
	finish()
}

func (s *scheduler) inputsOf(n *Node) []builders.Input {
	var out []builders.Input
	for _, d := range n.Deps {
		dn := s.x.g.Nodes[d]
		ar := s.res.Actions[d]
		if ar.Record == nil {
			continue
		}
		out = append(out, builders.Input{
			Address:  d,
			Kind:     dn.Kind,
			Name:     dn.Name,
			Dir:      s.x.distDir(dn),
			Manifest: ar.Record.Manifest,
			Metadata: ar.Record.Metadata,
		})
	}
	return out
}

func (x *Executor) distDir(n *Node) string {
	if n.Class == ClassPublish {
		return filepath.Join(x.opts.DistDir, "publish", n.Kind, n.Name)
	}
	return filepath.Join(x.opts.DistDir, n.Kind, n.Name)
}

// execute runs one action into a fresh output directory and stores the
// result.
func (x *Executor) execute(ctx context.Context, n *Node, pre *Preimage, inputs []builders.Input) (*ActionRecord, string, error) {
	work, err := x.store.TempDir("action-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(work)
	out := filepath.Join(work, "out")
	scratch := filepath.Join(work, "tmp")
	for _, d := range []string{out, scratch} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, "", err
		}
	}
	logf, err := os.Create(filepath.Join(work, "log"))
	if err != nil {
		return nil, "", err
	}
	defer logf.Close()
	tail := &tailBuffer{max: 2048}
	log := io.MultiWriter(logf, tail)

	var meta map[string]string
	switch n.Class {
	case ClassEnvironment:
		b, err := json.MarshalIndent(n.Resolved, "", "  ")
		if err == nil {
			err = os.WriteFile(filepath.Join(out, lock.ResolvedFileName), append(b, '\n'), 0o644)
		}
		if err != nil {
			return nil, "", err
		}
	case ClassTarget:
		var files []builders.InputFile
		before := map[string]statEntry{}
		for _, f := range n.InputFiles {
			info, err := os.Stat(f)
			if err != nil {
				return nil, "", err
			}
			sum, err := x.store.stats.hash(f)
			if err != nil {
				return nil, "", err
			}
			before[f] = identity(info)
			if pre.Inputs[x.relPath(f)] != sum {
				return nil, "", fmt.Errorf("%s: input %s changed since the build was planned; run the build again", n.Address, x.relPath(f))
			}
			files = append(files, builders.InputFile{Path: f, SHA256: sum, Size: info.Size()})
		}
		req := &builders.Request{
			Address: n.Address, Name: n.Name, Config: n.Config, BaseDir: n.BaseDir,
			Inputs: inputs, InputFiles: files, OutDir: out, TempDir: scratch, Log: log,
			Runner:          &execx.Runner{Env: x.opts.Environ, Log: log},
			PackageCacheDir: x.opts.PackageCacheDir, Offline: x.opts.Offline, Jobs: x.opts.Jobs,
		}
		r, err := n.Builder.Build(ctx, req)
		if err != nil {
			return nil, tail.String(), fmt.Errorf("%s: %w", n.Address, err)
		}
		if r != nil {
			meta = r.Metadata
		}
		// An input edited while the builder read it would store an output
		// of unknown content under the key of the old one.
		if err := inputsUnchanged(n, before); err != nil {
			return nil, tail.String(), err
		}
	case ClassPublish:
		var arts []publishers.Artifact
		for _, in := range inputs {
			if !strings.HasPrefix(in.Address, "target.") {
				continue
			}
			arts = append(arts, publishers.Artifact{Address: in.Address, Kind: in.Kind, Name: in.Name,
				Dir: in.Dir, Manifest: in.Manifest, Metadata: in.Metadata})
		}
		req := &publishers.Request{Address: n.Address, Name: n.Name, Config: n.Config, BaseDir: n.BaseDir,
			Artifacts: arts, DryRun: x.opts.DryRun, Log: log, Jobs: x.opts.Jobs}
		receipt, err := n.Publisher.Publish(ctx, req)
		if err != nil {
			return nil, tail.String(), fmt.Errorf("%s: %w", n.Address, err)
		}
		if x.opts.DryRun {
			// A dry run changes nothing, so nothing is recorded.
			return &ActionRecord{Key: pre.Key(), Address: n.Address, Preimage: pre}, "", nil
		}
		if receipt == nil {
			receipt = &publishers.Receipt{}
		}
		receipt.Address, receipt.Kind = n.Address, n.Kind
		// What was uploaded this time is news, not part of the result: the
		// same key must give the same receipt.
		fmt.Fprintf(log, "uploaded %d files (%d bytes), %d already there\n",
			receipt.Stats.Uploaded, receipt.Stats.UploadedBytes, receipt.Stats.Skipped)
		receipt.Stats = publishers.PublishStats{}
		b, err := json.MarshalIndent(receipt, "", "  ")
		if err == nil {
			err = os.WriteFile(filepath.Join(out, "receipt.json"), append(b, '\n'), 0o644)
		}
		if err != nil {
			return nil, "", err
		}
	}
	rec, err := x.store.Put(pre.Key(), n.Address, out, meta, pre)
	if err != nil {
		return nil, tail.String(), fmt.Errorf("%s: store result: %w", n.Address, err)
	}
	return rec, tail.String(), nil
}

// materialize lays a result out in dist unless it is there already.
func (x *Executor) materialize(n *Node, rec *ActionRecord) error {
	if rec == nil || rec.Manifest.Files == nil && n.Class == ClassPublish && x.opts.DryRun {
		return nil
	}
	dir := x.distDir(n)
	if x.materialized(rec, dir) {
		return nil
	}
	return x.store.Materialize(rec, dir)
}

// materialized reports whether dir holds exactly the store objects of rec
// (same inodes): the cheap check that keeps a no-op build from rewriting
// dist.
func (x *Executor) materialized(rec *ActionRecord, dir string) bool {
	count := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			count++
		}
		return nil
	})
	if err != nil || count != len(rec.Manifest.Files) {
		return false
	}
	for _, f := range rec.Manifest.Files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		a, err1 := os.Lstat(p)
		b, err2 := os.Stat(x.store.objectPath(f.SHA256, f.Executable))
		if err1 != nil || err2 != nil {
			return false
		}
		if os.SameFile(a, b) {
			continue
		}
		// A copy (the store on another file system) is as good when its
		// bytes are the same; the stat cache keeps that check cheap.
		if !a.Mode().IsRegular() || a.Size() != f.Size {
			return false
		}
		if sum, err := x.store.stats.hash(p); err != nil || sum != f.SHA256 {
			return false
		}
	}
	return true
}

// DistManifest is dist/manifest.json: every artifact of the last build.
type DistManifest struct {
	Artifacts []DistArtifact `json:"artifacts"`
}

// DistArtifact is one entry of dist/manifest.json.
type DistArtifact struct {
	Address  string            `json:"address"`
	Kind     string            `json:"kind"`
	Name     string            `json:"name"`
	Key      string            `json:"key"`
	Digest   string            `json:"digest"`
	Dir      string            `json:"dir"` // relative to dist/
	Files    []artifact.File   `json:"files"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// writeDistManifest records the artifacts of targets and environments that
// have a result; entries of earlier builds for blocks not in this build are
// kept while those blocks still exist.
func (x *Executor) writeDistManifest(res *Result) error {
	path := filepath.Join(x.opts.DistDir, "manifest.json")
	byAddr := map[string]DistArtifact{}
	if b, err := os.ReadFile(path); err == nil {
		var old DistManifest
		if json.Unmarshal(b, &old) == nil {
			for _, a := range old.Artifacts {
				if n, ok := x.g.Nodes[a.Address]; ok && n.Class != ClassPublish {
					byAddr[a.Address] = a
				}
			}
		}
	}
	for _, a := range res.Order {
		ar := res.Actions[a]
		n := x.g.Nodes[a]
		if ar.Record == nil || n.Class == ClassPublish {
			continue
		}
		rel, _ := filepath.Rel(x.opts.DistDir, x.distDir(n))
		files := ar.Record.Manifest.Files
		if files == nil {
			files = []artifact.File{}
		}
		byAddr[a] = DistArtifact{Address: a, Kind: n.Kind, Name: n.Name, Key: ar.Key,
			Digest: ar.Record.Manifest.Digest(), Dir: filepath.ToSlash(rel), Files: files, Metadata: ar.Record.Metadata}
	}
	m := DistManifest{Artifacts: []DistArtifact{}}
	for _, a := range sortedKeys(byAddr) {
		m.Artifacts = append(m.Artifacts, byAddr[a])
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	return fsutil.WriteFile(path, b, 0o644)
}

func changeStrings(cs []Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.String())
	}
	sort.Strings(out)
	return out
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

// inputsUnchanged checks that every input file of n still has the identity
// it had before the build, and that the builder still declares the same set.
func inputsUnchanged(n *Node, before map[string]statEntry) error {
	for f, id := range before {
		info, err := os.Stat(f)
		if err != nil || !identity(info).same(id) {
			return fmt.Errorf("%s: input %s changed during the build; run the build again", n.Address, f)
		}
	}
	if ind, ok := n.Builder.(builders.InputDeclarer); ok {
		now, err := ind.Inputs(n.Config, n.BaseDir)
		if err != nil {
			return fmt.Errorf("%s: inputs: %w", n.Address, err)
		}
		if len(now) != len(before) {
			return fmt.Errorf("%s: files were added to or removed from its inputs during the build; run the build again", n.Address)
		}
		for _, f := range now {
			if _, ok := before[f]; !ok {
				return fmt.Errorf("%s: input %s appeared during the build; run the build again", n.Address, f)
			}
		}
	}
	return nil
}
