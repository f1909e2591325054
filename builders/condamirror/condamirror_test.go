package condamirror

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/internal/conda/engine"
	"github.com/sparkenv/sparkenv/internal/conda/fixture"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/conda/oracle"
	"github.com/sparkenv/sparkenv/internal/conda/repodata"
	"github.com/sparkenv/sparkenv/internal/execx"
	"github.com/sparkenv/sparkenv/internal/testutil"
	"github.com/sparkenv/sparkenv/publishers"
)

var shared struct {
	once    sync.Once
	dir     string
	channel string
	pkgs    string
	envs    map[string]*lock.Resolved
	err     error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

var envSpecs = map[string][]string{
	"ml":  {"python 3.11.*", "wordcount"},
	"etl": {"prefixtext", "legacytool", "tinyjson"},
}

// setup builds the quickstart channel and solves two overlapping
// environments from it, once for all the tests of the package.
func setup(t *testing.T) (channel, pkgs string, envs map[string]*lock.Resolved) {
	t.Helper()
	testutil.Python(t, "3.11")
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "condamirror-test-")
		if shared.err != nil {
			return
		}
		shared.channel = filepath.Join(shared.dir, "channel")
		if shared.err = fixture.QuickstartChannel(context.Background(), shared.channel); shared.err != nil {
			return
		}
		shared.pkgs = filepath.Join(shared.dir, "pkgs")
		shared.envs = map[string]*lock.Resolved{}
		for name, specs := range envSpecs {
			env, err := (&engine.Engine{PkgsDir: shared.pkgs}).Solve(context.Background(), engine.SolveRequest{
				Platform: "linux-64", Channels: []string{shared.channel}, Specs: specs})
			if err != nil {
				shared.err = err
				return
			}
			shared.envs[name] = &lock.Resolved{Name: name, Prefix: "/opt/conda", Environment: env}
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.channel, shared.pkgs, shared.envs
}

func request(t *testing.T, envs map[string]*lock.Resolved, pkgs string, cfg *Config) *builders.Request {
	t.Helper()
	req := &builders.Request{
		Address: "target.conda_mirror.repo", Name: "repo", Config: cfg,
		OutDir: t.TempDir(), TempDir: t.TempDir(), Log: io.Discard,
		Runner:          &execx.Runner{Env: os.Environ()},
		PackageCacheDir: pkgs, Jobs: 2,
	}
	names := make([]string, 0, len(envs))
	for n := range envs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		in := t.TempDir()
		b, _ := json.Marshal(envs[n])
		if err := os.WriteFile(filepath.Join(in, lock.ResolvedFileName), b, 0o644); err != nil {
			t.Fatal(err)
		}
		req.Inputs = append(req.Inputs, builders.Input{Address: "environment." + n, Kind: "environment", Name: n, Dir: in})
	}
	return req
}

func readRepodata(t *testing.T, dir, subdir string) *repodata.Repodata {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, subdir, "repodata.json"))
	if err != nil {
		t.Fatal(err)
	}
	rd, err := repodata.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return rd
}

// mirrored returns every record of the mirror by subdir/file name.
func mirrored(t *testing.T, dir string, subdirs ...string) map[string]repodata.Record {
	t.Helper()
	out := map[string]repodata.Record{}
	for _, sd := range subdirs {
		for _, r := range readRepodata(t, dir, sd).Records() {
			out[sd+"/"+r.FileName] = r
		}
	}
	return out
}

func TestMirrorOfEnvironments(t *testing.T) {
	_, pkgs, envs := setup(t)
	t.Parallel()
	var digests []string
	var req *builders.Request
	var res *builders.Result
	for range 2 {
		req = request(t, envs, pkgs, &Config{Environments: []string{"environment.ml", "environment.etl"}, Shards: true})
		var err error
		res, err = New().Build(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		m, err := artifact.Scan(req.OutDir)
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, m.Digest())
	}
	if digests[0] != digests[1] {
		t.Fatalf("two builds differ: %s %s", digests[0], digests[1])
	}
	// Every locked package is there, byte-identical, described by its
	// lock record.
	want := map[string]repodata.Record{}
	for _, r := range envs {
		for _, rec := range r.Environment.Packages {
			rec.URL, rec.Channel = "", ""
			want[rec.Subdir+"/"+rec.FileName] = rec
		}
	}
	got := mirrored(t, req.OutDir, "linux-64", "noarch")
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("mirror records (-lock +mirror):\n%s", d)
	}
	for key, rec := range want {
		sum, size, err := artifact.HashFile(filepath.Join(req.OutDir, filepath.FromSlash(key)))
		if err != nil {
			t.Fatal(err)
		}
		if sum != rec.SHA256 || size != rec.Size {
			t.Errorf("%s: sha256 %s size %d, lock says %s %d", key, sum, size, rec.SHA256, rec.Size)
		}
	}
	for _, f := range []string{"channeldata.json", "index.html", "noarch/repodata.json.zst", "linux-64/index.html", "linux-64/" + repodata.ShardIndexFile} {
		if _, err := os.Stat(filepath.Join(req.OutDir, f)); err != nil {
			t.Error(err)
		}
	}
	wantMeta := map[string]string{
		publishers.MetaLayout: "tree", publishers.MetaMutable: Mutable,
		"subdirs": "linux-64,noarch", "packages": strconv.Itoa(len(want)),
	}
	if d := cmp.Diff(wantMeta, res.Metadata); d != "" {
		t.Errorf("metadata:\n%s", d)
	}
	// The publishers write the indexes last and the packages and shards
	// first.
	m, _ := artifact.Scan(req.OutDir)
	places, _ := publishers.Layout(publishers.Artifact{Name: "repo", Dir: req.OutDir, Manifest: m, Metadata: res.Metadata})
	for _, p := range places {
		isIndex := !strings.HasSuffix(p.Key, ".conda") && !strings.HasSuffix(p.Key, ".tar.bz2") && !strings.Contains(p.Key, "/shards/")
		if p.Last != isIndex {
			t.Errorf("%s: last = %v", p.Key, p.Last)
		}
	}
}

func serve(t *testing.T, dir string) string {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestRattlerResolvesLockedRecords has rattler, an independent conda
// client, solve each environment's specs against the mirror: it must find
// exactly the locked packages.
func TestRattlerResolvesLockedRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node")
	}
	_, pkgs, envs := setup(t)
	t.Parallel()
	o := oracle.ForTest(t)
	req := request(t, envs, pkgs, &Config{Environments: []string{"environment.etl", "environment.ml"}, Shards: true})
	if _, err := New().Build(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	url := serve(t, req.OutDir)
	for name, r := range envs {
		recs, err := o.SimpleSolve(context.Background(), r.Environment.Specs, []string{url + "/"}, []string{"linux-64", "noarch"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got, want []string
		for _, rec := range recs {
			got = append(got, rec.Name+" "+rec.Version+" "+rec.Build)
			if !strings.HasPrefix(rec.URL, url+"/") {
				t.Errorf("%s: %s comes from %s", name, rec.Name, rec.URL)
			}
		}
		for _, rec := range r.Environment.Packages {
			want = append(want, rec.Name+" "+rec.Version+" "+rec.Build)
		}
		sort.Strings(got)
		sort.Strings(want)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: rattler's solution against the mirror (-lock +rattler):\n%s", name, d)
		}
	}
}

// TestInstallFromMirror solves against the mirror over http with
// sparkenv's own engine, installs with an empty package cache (every
// package is downloaded from the mirror) and runs the result.
func TestInstallFromMirror(t *testing.T) {
	_, pkgs, envs := setup(t)
	t.Parallel()
	req := request(t, envs, pkgs, &Config{Environments: []string{"environment.ml"}})
	if _, err := New().Build(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	url := serve(t, req.OutDir)
	e := &engine.Engine{PkgsDir: t.TempDir()}
	env, err := e.Solve(context.Background(), engine.SolveRequest{Platform: "linux-64", Channels: []string{url}, Specs: envSpecs["ml"]})
	if err != nil {
		t.Fatal(err)
	}
	if len(env.Packages) != len(envs["ml"].Environment.Packages) {
		t.Fatalf("solved %d packages from the mirror, the lock has %d", len(env.Packages), len(envs["ml"].Environment.Packages))
	}
	for _, r := range env.Packages {
		if !strings.HasPrefix(r.URL, url+"/") {
			t.Fatalf("%s comes from %s", r.Name, r.URL)
		}
	}
	prefix := filepath.Join(t.TempDir(), "env")
	if _, err := e.Install(context.Background(), env, prefix, engine.InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(prefix, "bin", "python3.11"), "-c", "import wordcount, sys; print(sys.prefix)").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != prefix {
		t.Errorf("sys.prefix = %q, want %q", got, prefix)
	}
}

// fakeInstallation makes <tmp>/conda/pkgs the way conda leaves it: the
// archives of a channel, an extracted folder, and urls.txt naming where
// all archives but skip came from.
func fakeInstallation(t *testing.T, channel string, skip string) string {
	t.Helper()
	prefix := filepath.Join(t.TempDir(), "conda")
	pkgsDir := filepath.Join(prefix, "pkgs")
	if err := os.MkdirAll(filepath.Join(pkgsDir, "textnorm-1.0.0-pyh0_0", "info"), 0o755); err != nil {
		t.Fatal(err)
	}
	var urls []string
	err := filepath.WalkDir(channel, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || repodata.Stem(d.Name()) == "" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if d.Name() != skip {
			urls = append(urls, "https://conda.example.org/somechannel/"+filepath.Base(filepath.Dir(p))+"/"+d.Name())
		}
		return os.WriteFile(filepath.Join(pkgsDir, d.Name()), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	// conda keeps the channel's record beside each extracted package; the
	// channel may have patched it (here: a tighter python bound).
	fixtureRecs := mirrored(t, channel, "linux-64", "noarch")
	for key, patch := range map[string]func(*repodata.Record){
		"noarch/textnorm-1.0.0-pyh0_0.conda":  func(r *repodata.Record) { r.Depends = []string{"python >=3.10"} },
		"noarch/wordcount-2.1.0-pyh0_0.conda": func(r *repodata.Record) { r.Depends = nil; r.SHA256 = strings.Repeat("0", 64) },
	} {
		r := fixtureRecs[key]
		patch(&r)
		r.URL = "https://conda.example.org/somechannel/" + key
		r.Channel = "https://conda.example.org/somechannel"
		b, _ := json.Marshal(r)
		p := filepath.Join(pkgsDir, repodata.Stem(r.FileName), "info", "repodata_record.json")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(urls)
	// conda appends: a line may repeat, and other lines are noise
	urls = append(urls, urls[0], "", "https://conda.example.org/somechannel/linux-64/not-a-package.txt")
	if err := os.WriteFile(filepath.Join(pkgsDir, "urls.txt"), []byte(strings.Join(urls, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return prefix
}

func TestCaptureInstallation(t *testing.T) {
	channel, pkgs, _ := setup(t)
	t.Parallel()
	prefix := fakeInstallation(t, channel, "tinyjson-0.3.0-pyh0_0.tar.bz2")
	cfg := &Config{SourcePrefix: prefix}
	b := New()
	if err := b.Validate(cfg, "."); err != nil {
		t.Fatal(err)
	}
	inputs, err := b.Inputs(cfg, ".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range inputs {
		names = append(names, filepath.Base(p))
	}
	sort.Strings(names)
	fixtureRecs := mirrored(t, channel, "linux-64", "noarch")
	var wantNames []string
	for k := range fixtureRecs {
		wantNames = append(wantNames, filepath.Base(k))
	}
	wantNames = append(wantNames, "urls.txt", "repodata_record.json", "repodata_record.json")
	sort.Strings(wantNames)
	if d := cmp.Diff(wantNames, names); d != "" {
		t.Errorf("inputs:\n%s", d)
	}
	req := request(t, nil, pkgs, cfg)
	for _, p := range inputs {
		sum, size, err := artifact.HashFile(p)
		if err != nil {
			t.Fatal(err)
		}
		req.InputFiles = append(req.InputFiles, builders.InputFile{Path: p, SHA256: sum, Size: size})
	}
	var log strings.Builder
	req.Log = &log
	res, err := b.Build(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "wordcount-2.1.0-pyh0_0.conda: the channel record beside it describes other bytes") {
		t.Errorf("log:\n%s", log.String())
	}
	// The channel's patched record wins where it describes the file; the
	// one that does not (wrong sha256) is ignored.
	patched := fixtureRecs["noarch/textnorm-1.0.0-pyh0_0.conda"]
	patched.Depends = []string{"python >=3.10"}
	fixtureRecs["noarch/textnorm-1.0.0-pyh0_0.conda"] = patched
	if d := cmp.Diff(fixtureRecs, mirrored(t, req.OutDir, "linux-64", "noarch")); d != "" {
		t.Errorf("captured records (-fixture +mirror):\n%s", d)
	}
	if res.Metadata["subdirs"] != "linux-64,noarch" {
		t.Errorf("metadata %v", res.Metadata)
	}

	if _, err := os.Stat(filepath.Join(req.OutDir, "noarch", "index.html")); err != nil {
		t.Error(err)
	}
	no := false
	reqNoHTML := request(t, nil, pkgs, &Config{SourcePrefix: prefix, HTML: &no})
	if _, err := b.Build(context.Background(), reqNoHTML); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(reqNoHTML.OutDir, "*", "index.html")); len(m) > 0 {
		t.Errorf("html = false wrote %v", m)
	}

	// A package changed after planning is refused.
	req2 := request(t, nil, pkgs, cfg)
	req2.InputFiles = append([]builders.InputFile(nil), req.InputFiles...)
	req2.InputFiles[0].SHA256 = strings.Repeat("0", 64)
	if _, err := b.Build(context.Background(), req2); err == nil || !strings.Contains(err.Error(), "changed since the build was planned") {
		t.Errorf("changed input: %v", err)
	}
}

func TestConflictsAndMissingInputs(t *testing.T) {
	_, pkgs, envs := setup(t)
	t.Parallel()
	// Two environments locking different bytes under one file name.
	other := *envs["etl"]
	env := *other.Environment
	env.Packages = append([]repodata.Record(nil), env.Packages...)
	for i := range env.Packages {
		if env.Packages[i].Name == "python" {
			env.Packages[i].SHA256 = strings.Repeat("ab", 32)
		}
	}
	other.Environment = &env
	req := request(t, map[string]*lock.Resolved{"ml": envs["ml"], "etl": &other}, pkgs, &Config{Environments: []string{"environment.ml", "environment.etl"}})
	_, err := New().Build(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "lock different files named linux-64/python-") {
		t.Errorf("conflicting locks: %v", err)
	}
	req = request(t, map[string]*lock.Resolved{"ml": envs["ml"]}, pkgs, &Config{Environments: []string{"environment.ml", "environment.etl"}})
	if _, err := New().Build(context.Background(), req); err == nil || !strings.Contains(err.Error(), "environment.etl") {
		t.Errorf("missing input: %v", err)
	}
}

func TestValidate(t *testing.T) {
	b := New()
	for _, c := range []*Config{
		{},
		{Environments: []string{"environment.ml"}, SourcePrefix: "/opt/conda"},
		{Environments: []string{"target.squashfs.x"}},
		{Environments: []string{"environment.ml", "environment.ml"}},
	} {
		if err := b.Validate(c, "."); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	for _, c := range []*Config{{Environments: []string{"environment.ml"}}, {SourcePrefix: "/opt/conda"}} {
		if err := b.Validate(c, "."); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func TestParseURLs(t *testing.T) {
	got := ParseURLs([]byte(`https://conda.anaconda.org/conda-forge/linux-64/zlib-1.3-h0.conda
https://conda.anaconda.org/conda-forge/noarch/pip-24.0-pyhd8ed1ab_0.conda
file:///home/u/channel/linux-64/local-1-0.tar.bz2

# comment
https://repo.anaconda.com/pkgs/main/linux-64/zlib-1.3-h0.conda
https://conda.anaconda.org/conda-forge/linux-64/repodata.json
/abs/path/osx-arm64/x-1-0.conda
https://example.org/x-2-0.conda
`))
	want := map[string]string{
		"zlib-1.3-h0.conda":           "linux-64",
		"pip-24.0-pyhd8ed1ab_0.conda": "noarch",
		"local-1-0.tar.bz2":           "linux-64",
		"x-1-0.conda":                 "osx-arm64",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Error(d)
	}
}

func FuzzParseURLs(f *testing.F) {
	f.Add([]byte("https://conda.anaconda.org/conda-forge/linux-64/zlib-1.3-h0.conda\n"))
	f.Add([]byte("file:///x/noarch/a-1-0.tar.bz2\r\n%zz\n::\n/a/b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for fn, sd := range ParseURLs(data) {
			if strings.ContainsAny(fn, "/\\") || !subdirName.MatchString(sd) || repodata.Stem(fn) == "" {
				t.Fatalf("%q -> %q", fn, sd)
			}
		}
	})
}
