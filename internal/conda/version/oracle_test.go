package version

import (
	"bufio"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sparkenv/sparkenv/internal/conda/oracle"
	"github.com/sparkenv/sparkenv/internal/testutil"
)

// readVersions reads the real versions corpus (one a line).
func readVersions(t testing.TB) []string {
	t.Helper()
	f, err := os.Open(testutil.CondaData(t, "versions.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOrderMatchesRattler orders random pairs of real versions and
// compares with rattler. Pairs are drawn both uniformly and among
// neighbours in the sorted corpus, where the subtle cases are. The seed is
// logged; SPARKENV_TEST_SEED replays a run.
func TestOrderMatchesRattler(t *testing.T) {
	t.Parallel()
	versions := readVersions(t)
	o := oracle.ForTest(t)
	seed := uint64(time.Now().UnixNano())
	if env := os.Getenv("SPARKENV_TEST_SEED"); env != "" {
		s, err := strconv.ParseUint(env, 10, 64)
		if err != nil {
			t.Fatalf("SPARKENV_TEST_SEED: %v", err)
		}
		seed = s
	}
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	pairs := make([][2]string, 0, n)
	for len(pairs) < n {
		i := rng.IntN(len(versions))
		j := rng.IntN(len(versions))
		if len(pairs)%2 == 1 {
			// neighbours in the file (sorted by text): close versions
			j = min(len(versions)-1, i+1+rng.IntN(3))
		}
		pairs = append(pairs, [2]string{versions[i], versions[j]})
	}
	// The equality and local-version cases conda documents.
	pairs = append(pairs, [2]string{"1.0", "1.0.0"}, [2]string{"1.0.1_", "1.0.1a"}, [2]string{"1.0+1", "1.0"},
		[2]string{"1.1dev1", "1.1_"}, [2]string{"1!0.1", "2.0"}, [2]string{"1.0post1", "1.0.1"})
	// Local versions are rare in the corpus: compare all of them, their
	// public parts and variants with each other.
	var locals []string
	for _, v := range versions {
		if base, _, ok := strings.Cut(v, "+"); ok {
			locals = append(locals, v, base, base+".0", base+"+0", base+"+zz1")
		}
	}
	for _, a := range locals {
		for _, b := range locals {
			pairs = append(pairs, [2]string{a, b})
		}
	}
	got, err := o.Compare(pairs)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for i, p := range pairs {
		if got[i].Err != "" {
			t.Errorf("rattler rejects %q or %q: %s", p[0], p[1], got[i].Err)
			continue
		}
		mine := MustParse(p[0]).Compare(MustParse(p[1]))
		if mine != got[i].Order {
			bad++
			t.Errorf("%s vs %s: sparkenv %d, rattler %d", p[0], p[1], mine, got[i].Order)
		}
	}
	t.Logf("%d pairs compared with rattler (seed %d), %d disagreements", len(pairs), seed, bad)
}
