package matchspec

import (
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/sparkenv/sparkenv/internal/conda/oracle"
	"github.com/sparkenv/sparkenv/internal/conda/repodata"
	"github.com/sparkenv/sparkenv/internal/conda/version"
	"github.com/sparkenv/sparkenv/internal/testutil"
)

// snapshotRecords reads the records of a repodata.json or of a filename →
// record map.
func snapshotRecords(t *testing.T, file string) []repodata.Record {
	t.Helper()
	data, err := os.ReadFile(testutil.CondaData(t, file))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Packages      map[string]repodata.Record `json:"packages"`
		PackagesConda map[string]repodata.Record `json:"packages.conda"`
	}
	if err := json.Unmarshal(data, &idx); err == nil && len(idx.Packages)+len(idx.PackagesConda) > 0 {
		var out []repodata.Record
		for _, r := range idx.Packages {
			out = append(out, r)
		}
		for _, r := range idx.PackagesConda {
			out = append(out, r)
		}
		return out
	}
	var flat map[string]repodata.Record
	if err := json.Unmarshal(data, &flat); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	out := make([]repodata.Record, 0, len(flat))
	for _, r := range flat {
		out = append(out, r)
	}
	return out
}

// TestRepodataDependencies parses every depends and constrains entry of the
// real channel snapshots (leniently, as a solver does) and checks, against
// rattler's lenient parser, which versions of the named package each one
// accepts.
func TestRepodataDependencies(t *testing.T) {
	t.Parallel()
	versionsOf := map[string]map[string]bool{}
	deps := map[string]bool{}
	for _, f := range []string{"conda-index4.json", "pytorch-linux-64.repodata.json", "r-linux-64.repodata.json", "mamba-sudoku.repodata.json"} {
		for _, r := range snapshotRecords(t, f) {
			if versionsOf[r.Name] == nil {
				versionsOf[r.Name] = map[string]bool{}
			}
			versionsOf[r.Name][r.Version] = true
			for _, d := range append(append([]string{}, r.Depends...), r.Constrains...) {
				deps[d] = true
			}
		}
	}
	var list []string
	for d := range deps {
		list = append(list, d)
	}
	sort.Strings(list)
	o := oracle.ForTest(t)
	type item struct {
		spec    MatchSpec
		text    string
		version string
	}
	var items []item
	var reqs []oracle.MatchRequest
	for _, d := range list {
		m, err := ParseLenient(d)
		if err != nil {
			t.Errorf("dependency %q: %v", d, err)
			continue
		}
		if m.Version == nil {
			continue
		}
		vs := make([]string, 0, len(versionsOf[m.Name]))
		for v := range versionsOf[m.Name] {
			vs = append(vs, v)
		}
		sort.Strings(vs)
		if len(vs) > 40 {
			vs = vs[:40]
		}
		for _, v := range vs {
			// rattler reads only the version part here: take it from our
			// parse so that both sides evaluate the same constraint text.
			items = append(items, item{m, d, v})
			reqs = append(reqs, oracle.MatchRequest{Spec: versionText(d, m), Version: v, Lenient: true})
		}
	}
	res, err := o.Matches(reqs)
	if err != nil {
		t.Fatal(err)
	}
	bad, refused := 0, 0
	for i, it := range items {
		if res[i].Err != "" {
			refused++
			if refused <= 10 {
				t.Logf("rattler refuses %q (from %q): %s", reqs[i].Spec, it.text, firstLine(res[i].Err))
			}
			continue
		}
		got := it.spec.Version.Matches(version.MustParse(it.version))
		if got != res[i].Match {
			bad++
			if bad <= 20 {
				t.Errorf("%q on %s %s: sparkenv %v, rattler %v (%q)", it.text, it.spec.Name, it.version, got, res[i].Match, res[i].Canonical)
			}
		}
	}
	t.Logf("%d dependency strings, %d (dependency, version) pairs compared with rattler, %d disagreements, %d refused by rattler", len(list), len(items)-refused, bad, refused)
}

// versionText is the version part of a dependency string as written.
func versionText(dep string, m MatchSpec) string {
	rest := strings.TrimSpace(dep[len(m.Name):])
	if m.Build != "" {
		if i := strings.LastIndexAny(rest, " ="); i > 0 && strings.HasSuffix(rest, m.Build) {
			rest = strings.TrimSpace(rest[:i])
		}
	}
	return strings.Join(strings.Fields(rest), "")
}
