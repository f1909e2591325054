package solve

import (
	"context"
	"errors"
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

func BenchmarkSolveIndex4Dask(b *testing.B) {
	benchSolve(b, []string{"conda-index4.json"}, []string{"dask", "distributed", "python 3.5.*"})
}

func BenchmarkSolveIndex4Jupyter(b *testing.B) {
	benchSolve(b, []string{"conda-index4.json"}, []string{"jupyter", "python 3.6.*", "pandas", "scipy"})
}

func BenchmarkSolvePytorch(b *testing.B) {
	benchSolve(b, []string{"pytorch-linux-64.repodata.json", "conda-index4.json"}, []string{"pytorch-cpu 0.4.*", "python 3.5.*"})
}

func BenchmarkSolveREssentials(b *testing.B) {
	benchSolve(b, []string{"r-linux-64.repodata.json", "conda-index4.json"}, []string{"r-essentials"})
}

// The sudoku channel's box rule is not a real sudoku's, and its puzzles are
// unsatisfiable: these measure how fast that is proved.

func BenchmarkSolveSudokuPuzzle(b *testing.B) {
	benchUnsat(b, "mamba-sudoku.repodata.json", sudokuSpecs())
}

func BenchmarkSolveSudokuThreeGivens(b *testing.B) {
	benchUnsat(b, "mamba-sudoku.repodata.json", sudokuCells("sudoku_0_0 ==5", "sudoku_4_4 ==1", "sudoku_8_8 ==9"))
}

func benchUnsat(b *testing.B, file string, specTexts []string) {
	r := request(b, []*snapshot{loadSnapshot(b, file, snapshotNames[file])}, specTexts)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Solve(context.Background(), r); !errors.Is(err, ErrUnsatisfiable) {
			b.Fatalf("want unsatisfiable, got %v", err)
		}
	}
}
