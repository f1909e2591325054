package pex

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparkenv/sparkenv/internal/conda/repodata"
	"github.com/sparkenv/sparkenv/internal/testutil"
)

var time0 = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

func pythonRecord(version string) repodata.Record {
	return repodata.Record{Name: "python", Version: version, Build: "h0_0"}
}

func TestParseConstraint(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		">=3.10,<3.13":      ">=3.10,<3.13",
		" >= 3.10 , < 3.13": ">=3.10,<3.13",
		"3.11":              "==3.11.*",
		"CPython==3.11.*":   "CPython==3.11.*",
		"~=3.10":            "~=3.10",
		"!=3.11.2":          "!=3.11.2",
		"PyPy":              "PyPy",
	} {
		c, err := ParseConstraint(in)
		if err != nil || c.String() != want {
			t.Errorf("ParseConstraint(%q) = %q, %v; want %q", in, c.String(), err, want)
		}
	}
	for _, in := range []string{"", ">=", "3.x", ">=3.10.*", "~=3", ">=3..1", "==3.11,", "=3.11", "CPython>=3.10;x"} {
		if c, err := ParseConstraint(in); err == nil {
			t.Errorf("ParseConstraint(%q) = %q, want an error", in, c)
		}
	}
}

// TestConstraintAgreesWithBootstrap checks that the Go reading of a
// constraint and the bootstrap's agree on a matrix of versions.
func TestConstraintAgreesWithBootstrap(t *testing.T) {
	t.Parallel()
	py := testutil.Python(t, "3.11")
	specs := []string{">=3.10,<3.13", "==3.11.*", "!=3.11.*", "~=3.10", "~=3.10.2", "==3.11", ">3.10", "<=3.11.4",
		"CPython>=3.6", "PyPy>=3.6", "!=3.12.0", "3.9", ">=3.6,!=3.8.*,<4"}
	versions := [][]int{{2, 7, 18}, {3, 6, 15}, {3, 9, 0}, {3, 10, 0}, {3, 10, 1}, {3, 10, 2}, {3, 11, 0}, {3, 11, 4}, {3, 11, 5}, {3, 12, 0}, {3, 13, 1}, {4, 0, 0}}
	type pair struct {
		Spec string `json:"spec"`
		V    []int  `json:"v"`
	}
	var pairs []pair
	var want []bool
	for _, s := range specs {
		c, err := ParseConstraint(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range versions {
			pairs = append(pairs, pair{c.String(), v})
			want = append(want, c.Allows("cpython", v))
		}
	}
	in, _ := json.Marshal(pairs)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "boot.py"), bootstrap, 0o644); err != nil {
		t.Fatal(err)
	}
	script := "import json, sys\nsys.path.insert(0, sys.argv[1])\nimport boot\n" +
		"print(json.dumps([boot._constraint_ok(p['spec'], 'cpython', tuple(p['v'])) for p in json.load(sys.stdin)]))\n"
	cmd := exec.Command(py, "-c", script, dir)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var got []bool
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d answers, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s with %v: bootstrap says %v, Go says %v", pairs[i].Spec, pairs[i].V, got[i], want[i])
		}
	}
	if c, _ := ParseConstraint(">=3.10,<3.13"); !c.Allows("cpython", []int{3, 12, 9}) || c.Allows("cpython", []int{3, 13, 0}) {
		t.Errorf("Allows is wrong for %s", c)
	}
}

func FuzzParseConstraint(f *testing.F) {
	for _, s := range []string{">=3.10,<3.13", "3.11", "CPython==3.11.*", "~=3.10.2", "!=3.8.*", "PyPy3", ">= 3 . 1", "==3.11.*,", "~=3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConstraint(s)
		if err != nil {
			return
		}
		again, err := ParseConstraint(c.String())
		if err != nil || again.String() != c.String() {
			t.Fatalf("%q → %q → %q, %v", s, c.String(), again.String(), err)
		}
		c.Allows("cpython", []int{3, 11, 0})
		c.Allows("cpython", nil)
	})
}
