package repodata

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sparkenv/sparkenv/internal/testutil"
)

func readData(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(testutil.CondaData(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRealSnapshots(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file            string
		packages, conda int
		removed         int
		known           string
	}{
		{"pytorch-linux-64.repodata.json", 2181, 0, 0, "cuda100-1.0-0.tar.bz2"},
		{"r-linux-64.repodata.json", 4211, 0, 1, "_r-mutex-1.0.0-anacondar_1.tar.bz2"},
		{"mamba-sudoku.repodata.json", 729, 0, 0, "sudoku_0_0-1-0.tar.bz2"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			r, err := Parse(readData(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Packages) != tc.packages || len(r.PackagesConda) != tc.conda || len(r.Removed) != tc.removed {
				t.Fatalf("got %d packages, %d conda, %d removed; want %d, %d, %d",
					len(r.Packages), len(r.PackagesConda), len(r.Removed), tc.packages, tc.conda, tc.removed)
			}
			recs := r.Records()
			if len(recs) != tc.packages+tc.conda {
				t.Fatalf("Records: %d", len(recs))
			}
			for i, rec := range recs {
				if rec.FileName == "" || rec.Subdir == "" || rec.Depends == nil {
					t.Fatalf("record %d incomplete: %+v", i, rec)
				}
				if i > 0 && (recs[i-1].Name > rec.Name || recs[i-1].Name == rec.Name && recs[i-1].FileName >= rec.FileName) {
					t.Fatalf("records out of order at %d: %s, %s", i, recs[i-1].FileName, rec.FileName)
				}
			}
			if _, ok := r.Packages[tc.known]; !ok {
				t.Fatalf("%s missing", tc.known)
			}
		})
	}
	r, err := Parse(readData(t, "pytorch-linux-64.repodata.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := Record{
		Name: "cuda100", Version: "1.0", Build: "0", Depends: []string{},
		MD5: "5d438d0afe89cb57f3b650a2367495fb", SHA256: "7b7c28e141b8f2c9c840cc781a1dec0f1cb47967977a6269f50a2b4a44930283",
		Size: 1989, Subdir: "linux-64", Timestamp: 1544155153559, TrackFeatures: "cuda100", FileName: "cuda100-1.0-0.tar.bz2",
	}
	if d := cmp.Diff(want, r.Packages["cuda100-1.0-0.tar.bz2"]); d != "" {
		t.Fatalf("cuda100 (-want +got):\n%s", d)
	}
}

// index4BySubdir wraps conda-index4.json (file name → record) into one
// repodata.json per subdir; records without a subdir belong to linux-64.
func index4BySubdir(t testing.TB) map[string][]byte {
	t.Helper()
	var all map[string]json.RawMessage
	if err := json.Unmarshal(readData(t, "conda-index4.json"), &all); err != nil {
		t.Fatal(err)
	}
	groups := map[string]map[string]json.RawMessage{}
	for fn, raw := range all {
		var probe struct {
			Subdir *string `json:"subdir"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			t.Fatal(err)
		}
		sd := "linux-64"
		if probe.Subdir != nil {
			sd = *probe.Subdir
		}
		if groups[sd] == nil {
			groups[sd] = map[string]json.RawMessage{}
		}
		groups[sd][fn] = raw
	}
	out := map[string][]byte{}
	for sd, pkgs := range groups {
		b, err := json.Marshal(map[string]any{"info": map[string]string{"subdir": sd}, "packages": pkgs})
		if err != nil {
			t.Fatal(err)
		}
		out[sd] = b
	}
	return out
}

func TestIndex4Wrapped(t *testing.T) {
	t.Parallel()
	subdirs := index4BySubdir(t)
	counts := map[string]int{}
	for sd, data := range subdirs {
		r, err := Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", sd, err)
		}
		counts[sd] = len(r.Records())
		for _, rec := range r.Records() {
			if rec.Subdir != sd {
				t.Fatalf("%s: subdir %q", rec.FileName, rec.Subdir)
			}
		}
		if sd == "linux-64" {
			// a timestamp in seconds in the source, read as milliseconds
			if got := r.Packages["cloog-0.18.0-0.tar.bz2"].Timestamp; got != 1506534614000 {
				t.Fatalf("cloog timestamp %d", got)
			}
		}
	}
	if d := cmp.Diff(map[string]int{"linux-64": 5305, "noarch": 338}, counts); d != "" {
		t.Fatal(d)
	}
}

func TestParseLenient(t *testing.T) {
	t.Parallel()
	data := `{
	  "packages": {
	    "a-1-0.tar.bz2": {"name": "a", "version": 1, "build": "0", "build_number": "2", "depends": null,
	      "timestamp": 1600000000, "track_features": ["x", "y"], "noarch": true, "license": null, "unknown": {"k": 1}},
	    "b-1-0.tar.bz2": {"name": "b", "version": "1", "build": "0", "timestamp": 1600000000123.0, "subdir": "noarch"}
	  },
	  "packages.conda": null,
	  "extra": [1, 2]
	}`
	r, err := Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	a := r.Packages["a-1-0.tar.bz2"]
	want := Record{Name: "a", Version: "1", Build: "0", BuildNumber: 2, Depends: []string{}, Timestamp: 1600000000000,
		TrackFeatures: "x y", Noarch: "generic", FileName: "a-1-0.tar.bz2"}
	if d := cmp.Diff(want, a); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if b := r.Packages["b-1-0.tar.bz2"]; b.Timestamp != 1600000000123 || b.Subdir != "noarch" {
		t.Fatalf("b: %+v", b)
	}
	for _, bad := range []string{``, `[]`, `{"packages": {"a.conda": {"version": {}}}}`, `{"repodata_version": "x"}`} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

func TestDedup(t *testing.T) {
	t.Parallel()
	recs := []Record{
		{Name: "a", FileName: "a-1-0.tar.bz2", Subdir: "noarch"},
		{Name: "a", FileName: "a-1-0.conda", Subdir: "noarch"},
		{Name: "a", FileName: "a-2-0.tar.bz2", Subdir: "noarch"},
		{Name: "a", FileName: "a-1-0.tar.bz2", Subdir: "noarch", Channel: "other"},
	}
	got := Dedup(recs)
	var names []string
	for _, r := range got {
		names = append(names, r.Channel+":"+r.FileName)
	}
	if d := cmp.Diff([]string{":a-1-0.conda", ":a-2-0.tar.bz2", "other:a-1-0.tar.bz2"}, names); d != "" {
		t.Fatal(d)
	}
}

// stripLocation drops what is not part of a repodata entry.
func stripLocation(recs []Record) []Record {
	out := make([]Record, len(recs))
	for i, r := range recs {
		r.URL, r.Channel = "", ""
		out[i] = r
	}
	return out
}

func TestWriteRoundTrip(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"pytorch-linux-64.repodata.json", "r-linux-64.repodata.json"} {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			orig, err := Parse(readData(t, file))
			if err != nil {
				t.Fatal(err)
			}
			recs := orig.Records()
			recs[0].URL, recs[0].Channel = "https://example.org/x", "x" // must not be written
			dir := t.TempDir()
			if err := Write(dir, "linux-64", recs, WriteOptions{Zst: true, Shards: true, Removed: orig.Removed}); err != nil {
				t.Fatal(err)
			}
			plain, err := os.ReadFile(filepath.Join(dir, "linux-64", "repodata.json"))
			if err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{`"fn":`, `"url":`, `"channel":`, `"depends": null`, `\u003e`} {
				if bytes.Contains(plain, []byte(key)) {
					t.Errorf("written repodata contains %s", key)
				}
			}
			back, err := Parse(plain)
			if err != nil {
				t.Fatal(err)
			}
			want := stripLocation(recs)
			if d := cmp.Diff(want, back.Records()); d != "" {
				t.Fatalf("plain round trip (-want +got):\n%s", d)
			}
			if d := cmp.Diff(orig.Removed, back.Removed, cmpopts.EquateEmpty()); d != "" {
				t.Fatal(d)
			}
			zst, err := os.ReadFile(filepath.Join(dir, "linux-64", "repodata.json.zst"))
			if err != nil {
				t.Fatal(err)
			}
			backZ, err := ParseZst(zst)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, backZ.Records()); d != "" {
				t.Fatalf("zst round trip (-want +got):\n%s", d)
			}
			sharded := readShards(t, filepath.Join(dir, "linux-64"))
			if d := cmp.Diff(want, sharded.Records()); d != "" {
				t.Fatalf("shards round trip (-want +got):\n%s", d)
			}
			if d := cmp.Diff(orig.Removed, sharded.Removed, cmpopts.EquateEmpty()); d != "" {
				t.Fatalf("shards removed: %s", d)
			}
			// a second write of the same records, in another order, is byte-identical
			shuffled := slices.Clone(recs)
			rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			dir2 := t.TempDir()
			if err := Write(dir2, "linux-64", shuffled, WriteOptions{Zst: true, Shards: true, Removed: orig.Removed}); err != nil {
				t.Fatal(err)
			}
			if a, b := treeDigest(t, dir), treeDigest(t, dir2); a != b {
				t.Fatalf("two writes differ:\n%s\n%s", a, b)
			}
		})
	}
}

// readShards reads a sharded subdir from disk the way a client would,
// checking each shard's hash.
func readShards(t testing.TB, subdirDir string) *Repodata {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(subdirDir, ShardIndexFile))
	if err != nil {
		t.Fatal(err)
	}
	ix, err := ParseShardIndex(data)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Version != 1 || ix.Info.ShardsBaseURL != "./shards/" || ix.Info.BaseURL != "./" {
		t.Fatalf("index header: %+v", ix.Info)
	}
	var shards []*Shard
	for name, sum := range ix.Shards {
		b, err := os.ReadFile(filepath.Join(subdirDir, ShardsDir, ShardFileName(sum)))
		if err != nil {
			t.Fatalf("shard %s: %v", name, err)
		}
		if got := sha256Sum(b); got != sum {
			t.Fatalf("shard %s: content hash %x, index says %x", name, got, sum)
		}
		s, err := ParseShard(b)
		if err != nil {
			t.Fatalf("shard %s: %v", name, err)
		}
		for _, r := range s.Records() {
			if r.Name != name {
				t.Fatalf("shard %s holds %s", name, r.FileName)
			}
		}
		shards = append(shards, s)
	}
	return FromShards(ix, shards)
}

func treeDigest(t testing.TB, dir string) string {
	t.Helper()
	var sb strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sum := sha256Sum(b)
		sb.WriteString(rel + " " + string(hexOf(sum[:])) + "\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

func TestWriteStrict(t *testing.T) {
	t.Parallel()
	ok := Record{Name: "a", Version: "1", Build: "0", FileName: "a-1-0.conda"}
	for name, recs := range map[string][]Record{
		"no file name":   {{Name: "a", Version: "1", Build: "0"}},
		"bad extension":  {{Name: "a", Version: "1", Build: "0", FileName: "a-1-0.zip"}},
		"duplicate":      {ok, ok},
		"no version":     {{Name: "a", Build: "0", FileName: "a--0.conda"}},
		"other subdir":   {{Name: "a", Version: "1", Build: "0", FileName: "a-1-0.conda", Subdir: "linux-64"}},
		"bad sha256":     {{Name: "a", Version: "1", Build: "0", FileName: "a-1-0.conda", SHA256: "xyz"}},
		"path separator": {{Name: "a", Version: "1", Build: "0", FileName: "../a-1-0.conda"}},
	} {
		dir := t.TempDir()
		if err := Write(dir, "noarch", recs, WriteOptions{}); err == nil {
			t.Errorf("%s: Write succeeded", name)
		}
		if _, err := os.Stat(filepath.Join(dir, "noarch", "repodata.json")); err == nil {
			t.Errorf("%s: repodata.json written despite the error", name)
		}
	}
}

func TestWriteFormat(t *testing.T) {
	t.Parallel()
	recs := []Record{{Name: "a", Version: "1.0", Build: "py_0", FileName: "a-1.0-py_0.conda", Depends: nil,
		Constrains: []string{"b >=1,<2"}, Noarch: "python", Timestamp: 1600000000000, License: "MIT \"x\" é\u2028"}}
	dir := t.TempDir()
	if err := Write(dir, "noarch", recs, WriteOptions{BaseURL: "https://files.example.org/noarch/"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "noarch", "repodata.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "info": {
    "base_url": "https://files.example.org/noarch/",
    "subdir": "noarch"
  },
  "packages": {},
  "packages.conda": {
    "a-1.0-py_0.conda": {
      "build": "py_0",
      "build_number": 0,
      "constrains": [
        "b >=1,<2"
      ],
      "depends": [],
      "license": "MIT \"x\" é\u2028",
      "name": "a",
      "noarch": "python",
      "subdir": "noarch",
      "timestamp": 1600000000000,
      "version": "1.0"
    }
  },
  "removed": [],
  "repodata_version": 2
}
`
	if d := cmp.Diff(want, string(got)); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	var generic any
	if err := json.Unmarshal(got, &generic); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	r, err := Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if r.Info.BaseURL != "https://files.example.org/noarch/" || r.RepodataVersion != 2 {
		t.Fatalf("info: %+v %d", r.Info, r.RepodataVersion)
	}
	if r.PackagesConda["a-1.0-py_0.conda"].License != recs[0].License {
		t.Fatalf("license %q", r.PackagesConda["a-1.0-py_0.conda"].License)
	}
}

func TestChanneldata(t *testing.T) {
	t.Parallel()
	recs := []Record{
		{Name: "a", Version: "1.10", Subdir: "linux-64", Timestamp: 1000_000, License: "old", FileName: "a-1.10-0.conda"},
		{Name: "a", Version: "1.9", Subdir: "osx-64", Timestamp: 5000_000, License: "older", FileName: "a-1.9-0.conda"},
		{Name: "a", Version: "1.10rc1", Subdir: "linux-64", Timestamp: 9000_000, License: "rc", FileName: "a-1.10rc1-0.conda"},
		{Name: "b", Version: "2", Subdir: "noarch", Timestamp: 7000_000, FileName: "b-2-0.conda"},
	}
	opts := ChanneldataOptions{
		Subdirs: []string{"win-64"},
		Meta: map[string]ChannelPackage{"a": {Home: "https://a.example", PostLink: true, SourceURL: StringList{"https://src/a.tgz"},
			RunExports: map[string]json.RawMessage{"1.10": json.RawMessage(`{"weak":["a >=1.10"]}`)}}},
	}
	dir := t.TempDir()
	if err := WriteChanneldata(dir, recs, opts); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "channeldata.json"))
	if err != nil {
		t.Fatal(err)
	}
	cd, err := ParseChanneldata(data)
	if err != nil {
		t.Fatal(err)
	}
	if cd.ChanneldataVersion != 1 {
		t.Fatalf("version %d", cd.ChanneldataVersion)
	}
	if d := cmp.Diff([]string{"linux-64", "noarch", "osx-64", "win-64"}, cd.Subdirs); d != "" {
		t.Fatal(d)
	}
	a := cd.Packages["a"]
	if a.Version != "1.10" || a.Timestamp != 9000 || a.License != "old" || !a.PostLink || a.Home != "https://a.example" {
		t.Fatalf("a: %+v", a)
	}
	if d := cmp.Diff([]string{"linux-64", "osx-64"}, a.Subdirs); d != "" {
		t.Fatal(d)
	}
	if !bytes.Contains(data, []byte(`"source_url": "https://src/a.tgz"`)) || !bytes.Contains(data, []byte(`"run_exports": {}`)) {
		t.Fatalf("channeldata:\n%s", data)
	}
	data2, err := MarshalChanneldata(BuildChanneldata(recs, opts))
	if err != nil || !bytes.Equal(data, data2) {
		t.Fatalf("not deterministic: %v", err)
	}
}

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	// each strictly below the next (CEP 33's example ordering, abridged)
	order := []string{"0.4", "0.4.1.rc", "0.4.1", "0.5a1", "0.5b3", "0.5c1", "0.5", "0.9.6", "0.960923",
		"1.0", "1.1dev1", "1.1a1", "1.1.0dev1", "1.1.a1", "1.1.0rc1", "1.1.0", "1.1.0post1", "1.1post1",
		"1996.07.12", "1!0.4.1", "1!3.1.1.6", "2!0.4.1"}
	for i := 0; i+1 < len(order); i++ {
		if c := compareVersions(order[i], order[i+1]); c >= 0 {
			t.Errorf("compare(%s, %s) = %d, want < 0", order[i], order[i+1], c)
		}
		if c := compareVersions(order[i+1], order[i]); c <= 0 {
			t.Errorf("compare(%s, %s) = %d, want > 0", order[i+1], order[i], c)
		}
	}
	for _, eq := range [][2]string{{"1.0", "1.0.0"}, {"1.0", "1_0"}, {"1.A", "1.a"}, {"01.2", "1.2"}} {
		if c := compareVersions(eq[0], eq[1]); c != 0 {
			t.Errorf("compare(%s, %s) = %d, want 0", eq[0], eq[1], c)
		}
	}
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func TestWriteChannel(t *testing.T) {
	t.Parallel()
	recs := []Record{
		{Name: "a", Version: "1", Build: "0", FileName: "a-1-0.conda", Subdir: "linux-64", Depends: []string{}},
		{Name: "a", Version: "2", Build: "0", FileName: "a-2-0.conda", Subdir: "osx-arm64", Depends: []string{}},
	}
	root := t.TempDir()
	if err := WriteChannel(root, recs, WriteOptions{Zst: true, Shards: true}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"channeldata.json", "noarch/repodata.json", "noarch/repodata.json.zst", "linux-64/" + ShardIndexFile,
		"osx-arm64/repodata.json"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Error(err)
		}
	}
	cdData, err := os.ReadFile(filepath.Join(root, "channeldata.json"))
	if err != nil {
		t.Fatal(err)
	}
	cd, err := ParseChanneldata(cdData)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"linux-64", "noarch", "osx-arm64"}, cd.Subdirs); d != "" || cd.Packages["a"].Version != "2" {
		t.Fatalf("channeldata: %s %+v", d, cd.Packages["a"])
	}
	// rewriting without .zst and shards removes them: clients would read
	// them first and see the old index
	if err := WriteChannel(root, recs[:1], WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"linux-64/repodata.json.zst", "linux-64/" + ShardIndexFile} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("stale %s left", p)
		}
	}
	if err := WriteChannel(t.TempDir(), []Record{{Name: "x", Version: "1", Build: "0", FileName: "x-1-0.conda"}}, WriteOptions{}); err == nil {
		t.Fatal("record without subdir accepted")
	}
}
