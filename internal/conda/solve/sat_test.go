package solve

import (
	"math/rand/v2"
	"testing"

	gsat "github.com/crillab/gophersat/solver"
)

// TestSATAgainstGophersat checks the CDCL engine on random problems
// (clauses plus at-most-one groups) against gophersat: same
// satisfiability, and every model found really satisfies the problem.
func TestSATAgainstGophersat(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	sat, unsat := 0, 0
	for iter := 0; iter < 1000; iter++ {
		nvars := 10 + rng.IntN(50)
		// at-most-one groups over consecutive variables
		groupOf := make([]int, nvars)
		var groups [][]int
		for v := 0; v < nvars; {
			size := 1 + rng.IntN(5)
			var g []int
			for ; v < nvars && len(g) < size; v++ {
				groupOf[v] = len(groups)
				g = append(g, v)
			}
			groups = append(groups, g)
		}
		var cnf [][]int
		for _, g := range groups {
			for i := range g {
				for j := i + 1; j < len(g); j++ {
					cnf = append(cnf, []int{-(g[i] + 1), -(g[j] + 1)})
				}
			}
		}
		nclauses := nvars * (4 + rng.IntN(8)) / 4
		var mine [][]lit
		for range nclauses {
			k := 2 + rng.IntN(3)
			var c []int
			var l []lit
			for range k {
				v := rng.IntN(nvars)
				if rng.IntN(2) == 0 {
					c = append(c, -(v + 1))
					l = append(l, negLit(v))
				} else {
					c = append(c, v+1)
					l = append(l, posLit(v))
				}
			}
			cnf = append(cnf, c)
			mine = append(mine, l)
		}
		ref := gsat.New(gsat.ParseSliceNb(cnf, nvars)).Solve() == gsat.Sat

		s := newSAT(nvars, groupOf, groups)
		ok := true
		for _, c := range mine {
			if !s.addClause(append([]lit(nil), c...)) {
				ok = false
			}
		}
		if ok {
			ok = s.settle()
		}
		for ok {
			next := -1
			for v := 0; v < nvars; v++ {
				if s.value[v] == 0 {
					next = v
					break
				}
			}
			if next < 0 {
				break
			}
			l := posLit(next)
			if rng.IntN(2) == 0 {
				l = negLit(next)
			}
			ok = s.decide(l)
		}
		if ok != ref {
			t.Fatalf("problem %d: engine says %v, gophersat %v", iter, ok, ref)
		}
		if !ok {
			unsat++
			continue
		}
		sat++
		for _, c := range cnf {
			good := false
			for _, x := range c {
				v := x
				if v < 0 {
					v = -v
				}
				val := s.value[v-1] == 1
				if (x > 0) == val {
					good = true
				}
			}
			if !good {
				t.Fatalf("problem %d: model violates %v", iter, c)
			}
		}
	}
	t.Logf("%d satisfiable, %d unsatisfiable problems agree with gophersat", sat, unsat)
}
