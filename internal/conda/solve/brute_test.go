package solve

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sparkenv/sparkenv/internal/conda/matchspec"
	"github.com/sparkenv/sparkenv/internal/conda/repodata"
	"github.com/sparkenv/sparkenv/internal/conda/version"
)

// TestAgainstBruteForce solves hundreds of small random problems and checks
// each answer by enumerating every choice of records: a solution must be
// valid, "unsatisfiable" must mean no choice works, and the first requested
// package must get the best record any valid choice allows.
func TestAgainstBruteForce(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 11))
	names := []string{"a", "b", "c", "d", "e"}
	ops := []string{">=", "<", "==", "!="}
	sat, unsat := 0, 0
	for iter := 0; iter < 500; iter++ {
		var recs []repodata.Record
		for _, n := range names {
			for k := range 1 + rng.IntN(3) {
				r := pkg(n, fmt.Sprint(1+k), int64(rng.IntN(3)))
				r.Build = fmt.Sprintf("b%d", k)
				for _, m := range names {
					if m != n && rng.IntN(4) == 0 {
						r.Depends = append(r.Depends, fmt.Sprintf("%s %s%d", m, ops[rng.IntN(len(ops))], 1+rng.IntN(3)))
					}
				}
				if rng.IntN(6) == 0 {
					m := names[rng.IntN(len(names))]
					if m != n {
						r.Constrains = append(r.Constrains, fmt.Sprintf("%s <%d", m, 1+rng.IntN(3)))
					}
				}
				recs = append(recs, r)
			}
		}
		var specTexts []string
		for range 1 + rng.IntN(2) {
			n := names[rng.IntN(len(names))]
			if rng.IntN(2) == 0 {
				specTexts = append(specTexts, n)
			} else {
				specTexts = append(specTexts, fmt.Sprintf("%s %s%d", n, ops[rng.IntN(len(ops))], 1+rng.IntN(3)))
			}
		}
		req := Request{Channels: one(recs...), Specs: specs(t, specTexts...)}
		sol, err := Solve(context.Background(), req)
		valid := bruteForce(t, recs, req.Specs)
		if err != nil {
			if !errors.Is(err, ErrUnsatisfiable) {
				t.Fatal(err)
			}
			if len(valid) > 0 {
				t.Fatalf("problem %d %v: Solve says %v, but %v is valid\n%+v", iter, specTexts, err, valid[0], recs)
			}
			unsat++
			continue
		}
		sat++
		if len(valid) == 0 {
			t.Fatalf("problem %d: no valid choice exists but Solve returned %v", iter, sol.Records)
		}
		if !isValid(t, sol.Records, req.Specs) {
			t.Fatalf("problem %d %v: invalid solution %v", iter, specTexts, sol.Records)
		}
		// The first requested package gets the best record possible.
		first := req.Specs[0]
		var got *repodata.Record
		for i := range sol.Records {
			if first.Matches(&sol.Records[i]) {
				got = &sol.Records[i]
			}
		}
		for _, choice := range valid {
			for _, r := range choice {
				if first.Matches(&r) && better(&r, got) {
					t.Fatalf("problem %d %v: chose %s-%s-%d, but %s-%s-%d is possible (%v)", iter, specTexts,
						got.Name, got.Version, got.BuildNumber, r.Name, r.Version, r.BuildNumber, choice)
				}
			}
		}
	}
	t.Logf("%d satisfiable and %d unsatisfiable random problems checked", sat, unsat)
}

func better(a, b *repodata.Record) bool {
	if r := version.MustParse(a.Version).Compare(version.MustParse(b.Version)); r != 0 {
		return r > 0
	}
	return a.BuildNumber > b.BuildNumber
}

// bruteForce returns every valid choice (at most one record per name).
func bruteForce(t *testing.T, recs []repodata.Record, specs []matchspec.MatchSpec) [][]repodata.Record {
	byName := map[string][]repodata.Record{}
	var names []string
	for _, r := range recs {
		if byName[r.Name] == nil {
			names = append(names, r.Name)
		}
		byName[r.Name] = append(byName[r.Name], r)
	}
	var out [][]repodata.Record
	var walk func(i int, chosen []repodata.Record)
	walk = func(i int, chosen []repodata.Record) {
		if i == len(names) {
			if isValid(t, chosen, specs) {
				out = append(out, append([]repodata.Record(nil), chosen...))
			}
			return
		}
		walk(i+1, chosen)
		for _, r := range byName[names[i]] {
			walk(i+1, append(chosen, r))
		}
	}
	walk(0, nil)
	return out
}

func isValid(t *testing.T, chosen []repodata.Record, specs []matchspec.MatchSpec) bool {
	satisfied := func(m matchspec.MatchSpec) bool {
		for i := range chosen {
			if m.Matches(&chosen[i]) {
				return true
			}
		}
		return false
	}
	seen := map[string]bool{}
	for _, r := range chosen {
		if seen[r.Name] {
			return false
		}
		seen[r.Name] = true
	}
	for _, m := range specs {
		if !satisfied(m) {
			return false
		}
	}
	for _, r := range chosen {
		for _, d := range r.Depends {
			if !satisfied(matchspec.MustParse(d)) {
				return false
			}
		}
		for _, c := range r.Constrains {
			m := matchspec.MustParse(c)
			for i := range chosen {
				if chosen[i].Name == m.Name && !m.Matches(&chosen[i]) {
					return false
				}
			}
		}
	}
	return true
}
