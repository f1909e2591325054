package solve

import (
	"context"
	"testing"
)

func benchSolve(b *testing.B, files []string, specTexts []string) {
	var snaps []*snapshot
	for _, f := range files {
		snaps = append(snaps, loadSnapshot(b, f, snapshotNames[f]))
	}
	r := request(b, snaps, specTexts)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Solve(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSolveIndex4Numpy(b *testing.B) {
	benchSolve(b, []string{"conda-index4.json"}, []string{"numpy"})
}

func BenchmarkSolveIndex4Anaconda(b *testing.B) {
	benchSolve(b, []string{"conda-index4.json"}, []string{"anaconda"})
}

func BenchmarkSolveIndex4Jupyter(b *testing.B) {
	benchSolve(b, []string{"conda-index4.json"}, []string{"jupyter", "python 3.6.*", "pandas", "scipy"})
}

func BenchmarkSolvePytorch(b *testing.B) {
	benchSolve(b, []string{"pytorch-linux-64.repodata.json", "conda-index4.json"}, []string{"pytorch", "torchvision"})
}

func BenchmarkSolveREssentials(b *testing.B) {
	benchSolve(b, []string{"r-linux-64.repodata.json"}, []string{"r-essentials"})
}

func BenchmarkSolveSudoku(b *testing.B) {
	benchSolve(b, []string{"mamba-sudoku.repodata.json"}, sudokuCells("sudoku_0_0 ==5", "sudoku_4_4 ==1", "sudoku_8_8 ==9"))
}
