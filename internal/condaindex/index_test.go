package condaindex

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparkenv/sparkenv/internal/conda/fixture"
	"github.com/sparkenv/sparkenv/internal/conda/oracle"
	"github.com/sparkenv/sparkenv/internal/conda/repodata"
	"github.com/sparkenv/sparkenv/internal/testutil"
)

var shared struct {
	once sync.Once
	dir  string // the quickstart channel as the fixture wrote it
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// quickstart returns the fixture channel, built once for the package.
func quickstart(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "condaindex-test-")
		if shared.err == nil {
			shared.err = fixture.QuickstartChannel(context.Background(), shared.dir)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.dir
}

// packagesOnly copies the package files of channel src into a new folder,
// without any index.
func packagesOnly(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !IsPackageFile(d.Name()) {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		return copyFile(p, filepath.Join(dst, rel))
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

func readRepodata(t testing.TB, dir, subdir string) *repodata.Repodata {
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

var full = Options{Zst: true, Shards: true, Channeldata: true, HTML: true}

// TestIndexMatchesFixture indexes the fixture channel's packages and
// compares the records with those the fixture wrote from what it packed.
func TestIndexMatchesFixture(t *testing.T) {
	t.Parallel()
	src := quickstart(t)
	dir := packagesOnly(t, src)
	st, err := Index(context.Background(), dir, full)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, sd := range []string{"linux-64", "noarch"} {
		want := readRepodata(t, src, sd).Records()
		got := readRepodata(t, dir, sd).Records()
		total += len(got)
		if len(want) == 0 {
			t.Fatalf("%s: the fixture wrote no records", sd)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: records differ from the fixture's (-fixture +index):\n%s", sd, d)
		}
		// The zstd and sharded forms say the same.
		zb, err := os.ReadFile(filepath.Join(dir, sd, "repodata.json.zst"))
		if err != nil {
			t.Fatal(err)
		}
		zrd, err := repodata.ParseZst(zb)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(got, zrd.Records()); d != "" {
			t.Errorf("%s: repodata.json.zst differs:\n%s", sd, d)
		}
		ib, err := os.ReadFile(filepath.Join(dir, sd, repodata.ShardIndexFile))
		if err != nil {
			t.Fatal(err)
		}
		ix, err := repodata.ParseShardIndex(ib)
		if err != nil {
			t.Fatal(err)
		}
		var shards []*repodata.Shard
		for _, sum := range ix.Shards {
			b, err := os.ReadFile(filepath.Join(dir, sd, repodata.ShardsDir, repodata.ShardFileName(sum)))
			if err != nil {
				t.Fatal(err)
			}
			s, err := repodata.ParseShard(b)
			if err != nil {
				t.Fatal(err)
			}
			shards = append(shards, s)
		}
		if d := cmp.Diff(got, repodata.FromShards(ix, shards).Records()); d != "" {
			t.Errorf("%s: shards differ:\n%s", sd, d)
		}
		page, err := os.ReadFile(filepath.Join(dir, sd, "index.html"))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range got {
			if !bytes.Contains(page, []byte(">"+r.FileName+"<")) || !bytes.Contains(page, []byte(r.SHA256)) {
				t.Errorf("%s/index.html does not list %s with its sha256", sd, r.FileName)
			}
		}
	}
	if st.Packages != total || st.Read != total || st.Reused != 0 {
		t.Errorf("stats %+v, want %d packages all read", st, total)
	}
	cb, err := os.ReadFile(filepath.Join(dir, "channeldata.json"))
	if err != nil {
		t.Fatal(err)
	}
	cd, err := repodata.ParseChanneldata(cb)
	if err != nil {
		t.Fatal(err)
	}
	if got := cd.Packages["prefixtext"]; !got.TextPrefix || got.Version != "1.0" || cmp.Diff([]string{"linux-64"}, got.Subdirs) != "" {
		t.Errorf("channeldata prefixtext: %+v", got)
	}
	if got := cd.Packages["wordcount"]; got.TextPrefix || got.BinaryPrefix || got.Version != "2.1.0" {
		t.Errorf("channeldata wordcount: %+v", got)
	}
	if got, ok := cd.Packages["prefixbin"]; ok && (!got.BinaryPrefix || got.TextPrefix) {
		t.Errorf("channeldata prefixbin: %+v", got)
	}
	if d := cmp.Diff([]string{"linux-64", "noarch"}, cd.Subdirs); d != "" {
		t.Errorf("channeldata subdirs: %s", d)
	}
	root, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil || !bytes.Contains(root, []byte(`href="linux-64/"`)) {
		t.Errorf("root index.html: %v\n%s", err, root)
	}
}

// outputs maps every file of an indexed channel but the cache to its bytes.
func outputs(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == CacheFile {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestIncremental(t *testing.T) {
	t.Parallel()
	dir := packagesOnly(t, quickstart(t))
	ctx := context.Background()
	first, err := Index(ctx, dir, full)
	if err != nil {
		t.Fatal(err)
	}
	before := outputs(t, dir)

	st, err := Index(ctx, dir, full)
	if err != nil {
		t.Fatal(err)
	}
	if st.Read != 0 || st.Reused != first.Packages {
		t.Fatalf("second run: %+v, want nothing read", st)
	}
	if d := cmp.Diff(before, outputs(t, dir)); d != "" {
		t.Fatalf("a run from the cache wrote other bytes:\n%s", d)
	}

	// One new package: only it is read.
	extra := t.TempDir()
	p := fixture.NoarchPython("extra", "0.1", map[string]string{"extra/__init__.py": "X = 1\n"}, nil)
	if err := fixture.WriteChannel(ctx, extra, []fixture.Package{p}, fixture.ChannelOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(filepath.Join(extra, "noarch", p.FileName()), filepath.Join(dir, "noarch", p.FileName())); err != nil {
		t.Fatal(err)
	}
	st, err = Index(ctx, dir, full)
	if err != nil {
		t.Fatal(err)
	}
	if st.Read != 1 || st.Reused != first.Packages || st.Packages != first.Packages+1 {
		t.Fatalf("after adding one package: %+v", st)
	}
	if _, ok := readRepodata(t, dir, "noarch").PackagesConda[p.FileName()]; !ok {
		t.Fatal("the new package is not in noarch/repodata.json")
	}

	// A removed package leaves the index; a rewritten one is read again.
	if err := os.Remove(filepath.Join(dir, "noarch", p.FileName())); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	touched := filepath.Join(dir, "noarch", "textnorm-1.0.0-pyh0_0.conda")
	if err := os.Chtimes(touched, later, later); err != nil {
		t.Fatal(err)
	}
	st, err = Index(ctx, dir, full)
	if err != nil {
		t.Fatal(err)
	}
	if st.Read != 1 || st.Packages != first.Packages {
		t.Fatalf("after removing one package and touching another: %+v", st)
	}
	if _, ok := readRepodata(t, dir, "noarch").PackagesConda[p.FileName()]; ok {
		t.Fatal("the removed package is still in noarch/repodata.json")
	}
	if d := cmp.Diff(before, outputs(t, dir), ignoreShards()); d != "" {
		t.Fatalf("index after add and remove differs from the first:\n%s", d)
	}
}

// ignoreShards ignores shard files: older shards are kept on purpose for
// clients holding an older shard index.
func ignoreShards() cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool {
		if mi, ok := p.Last().(cmp.MapIndex); ok {
			return strings.Contains(mi.Key().String(), "/"+repodata.ShardsDir+"/")
		}
		return false
	}, cmp.Ignore())
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	src := quickstart(t)
	a, b := packagesOnly(t, src), packagesOnly(t, src)
	if _, err := Index(context.Background(), a, Options{Zst: true, Shards: true, Channeldata: true, HTML: true, Jobs: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := Index(context.Background(), b, Options{Zst: true, Shards: true, Channeldata: true, HTML: true, Jobs: 8, NoCache: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b, CacheFile)); err == nil {
		t.Error("NoCache wrote a cache file")
	}
	oa, ob := outputs(t, a), outputs(t, b)
	if d := cmp.Diff(oa, ob); d != "" {
		t.Fatalf("two indexes of the same packages differ:\n%s", d)
	}
	var names []string
	for k := range oa {
		names = append(names, k)
	}
	sort.Strings(names)
	t.Logf("files: %s", strings.Join(names, " "))
}

func TestBrokenPackageIsNamedAndNothingWritten(t *testing.T) {
	t.Parallel()
	dir := packagesOnly(t, quickstart(t))
	broken := filepath.Join(dir, "linux-64", "broken-1.0-0.conda")
	if err := os.WriteFile(broken, []byte("not a zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	misplaced := filepath.Join(dir, "linux-64", "textnorm-1.0.0-pyh0_0.conda")
	if err := copyFile(filepath.Join(dir, "noarch", "textnorm-1.0.0-pyh0_0.conda"), misplaced); err != nil {
		t.Fatal(err)
	}
	_, err := Index(context.Background(), dir, full)
	if err == nil {
		t.Fatal("no error")
	}
	t.Log(err)
	for _, want := range []string{broken, misplaced + `: info/index.json says subdir "noarch"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "linux-64", "repodata.json")); err == nil {
		t.Error("an index was written despite the broken package")
	}
	// A renamed package is refused too: clients find files by their stem.
	dir2 := t.TempDir()
	if err := copyFile(filepath.Join(dir, "noarch", "tinyjson-0.3.0-pyh0_0.tar.bz2"), filepath.Join(dir2, "noarch", "tinyjson-0.4-0.tar.bz2")); err != nil {
		t.Fatal(err)
	}
	if _, err := Index(context.Background(), dir2, full); err == nil || !strings.Contains(err.Error(), "does not match info/index.json") {
		t.Errorf("renamed package: %v", err)
	}
}

func TestEmptyChannelHasNoarch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"noarch/repodata.json.bz2", "noarch/current_repodata.json"} {
		if err := copyFile(os.DevNull, filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := Index(context.Background(), dir, Options{Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if st.Packages != 0 || len(readRepodata(t, dir, "noarch").Records()) != 0 {
		t.Fatalf("%+v", st)
	}
	for _, f := range []string{"noarch/repodata.json.zst", "channeldata.json", "index.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s written though not asked for", f)
		}
	}
	for _, f := range []string{"noarch/repodata.json.bz2", "noarch/current_repodata.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("stale %s left in place", f)
		}
	}
	// Every form of an empty index is valid.
	dir = t.TempDir()
	if _, err := Index(context.Background(), dir, full); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "noarch", repodata.ShardIndexFile))
	if err != nil {
		t.Fatal(err)
	}
	if ix, err := repodata.ParseShardIndex(b); err != nil || len(ix.Shards) != 0 {
		t.Fatalf("empty shard index: %v %v", ix, err)
	}
}

// TestRattlerSolvesIndexedChannel has rattler, an independent conda client,
// solve against the indexed channel served on loopback.
func TestRattlerSolvesIndexedChannel(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node")
	}
	t.Parallel()
	testutil.Python(t, "3.11")
	o := oracle.ForTest(t)
	dir := packagesOnly(t, quickstart(t))
	if _, err := Index(context.Background(), dir, full); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	recs, err := o.SimpleSolve(context.Background(), []string{"wordcount"}, []string{srv.URL + "/"}, []string{"linux-64", "noarch"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, strings.TrimPrefix(r.URL, srv.URL))
	}
	sort.Strings(got)
	var want []string
	for _, sd := range []string{"linux-64", "noarch"} {
		for _, r := range readRepodata(t, dir, sd).Records() {
			switch r.Name {
			case "python", "wordcount", "textnorm", "tinyjson":
				want = append(want, "/"+sd+"/"+r.FileName)
			}
		}
	}
	sort.Strings(want)
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("rattler's solution (-want +got):\n%s", d)
	}
}

func TestHashFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, size := range []int{0, 1, splitAbove - 1, splitAbove, 1 << 20, 1<<20 + 1, 3<<20 + 12345} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*7 + i>>9)
		}
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := HashFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s, m := sha256.Sum256(data), md5.Sum(data)
		if d.SHA256 != hex.EncodeToString(s[:]) || d.MD5 != hex.EncodeToString(m[:]) || d.Size != int64(size) {
			t.Errorf("size %d: %+v", size, d)
		}
	}
}
