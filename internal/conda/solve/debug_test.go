package solve

import (
	"context"
	"testing"

	gsat "github.com/crillab/gophersat/solver"
)

func TestDebugSudoku(t *testing.T) {
	snap := loadSnapshot(t, "mamba-sudoku.repodata.json", "sudoku")
	r := request(t, []*snapshot{snap}, sudokuCells())
	s, err := newSolver(r)
	if err != nil {
		t.Fatal(err)
	}
	var cnf [][]int
	for _, rq := range s.reqs {
		var c []int
		if rq.parent >= 0 {
			c = append(c, -(rq.parent + 1))
		}
		for _, x := range rq.cands {
			c = append(c, x+1)
		}
		cnf = append(cnf, c)
	}
	for _, g := range s.sat.groups {
		for i := range g {
			for j := i + 1; j < len(g); j++ {
				cnf = append(cnf, []int{-(g[i] + 1), -(g[j] + 1)})
			}
		}
	}
	t.Logf("vars %d reqs %d", len(s.vars), len(s.reqs))
	ref := gsat.New(gsat.ParseSliceNb(cnf, len(s.vars))).Solve()
	t.Logf("gophersat: %v", ref)
	ok, err := s.run(context.Background())
	t.Logf("mine: %v %v decisions %d learnt %d", ok, err, s.decided, s.sat.learnts)
}
