package solve

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sparkenv/sparkenv/internal/conda/matchspec"
	"github.com/sparkenv/sparkenv/internal/conda/repodata"
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

// syntheticChannel builds a conda-forge-sized channel: names × versions ×
// builds records, each depending on a few lower-numbered names with
// version bounds, so that requests have deep closures.
func syntheticChannel(names, versions, builds int) []ChannelRecords {
	rng := rand.New(rand.NewPCG(3, 4))
	recs := make([]repodata.Record, 0, names*versions*builds)
	for n := range names {
		for v := range versions {
			for b := range builds {
				r := repodata.Record{
					Name: fmt.Sprintf("pkg%05d", n), Version: fmt.Sprintf("%d.%d", v/10, v%10), Build: fmt.Sprintf("h%d_%d", b, b),
					BuildNumber: int64(b), Subdir: "linux-64", Timestamp: int64(1_600_000_000_000 + v*1000 + b),
				}
				for range min(n, 3) {
					d := rng.IntN(n)
					lo := rng.IntN(versions)
					r.Depends = append(r.Depends, fmt.Sprintf("pkg%05d >=%d.%d,<%d", d, lo/10, lo%10, lo/10+2))
				}
				r.FileName = r.Name + "-" + r.Version + "-" + r.Build + ".conda"
				recs = append(recs, r)
			}
		}
	}
	return []ChannelRecords{{Name: "synthetic", Records: recs}}
}

// BenchmarkSolveSynthetic200k solves five top-level packages in a channel
// of 200,000 records (the order of conda-forge's linux-64 subdir).
func BenchmarkSolveSynthetic200k(b *testing.B) {
	chs := syntheticChannel(5000, 20, 2)
	r := Request{Channels: chs}
	for _, n := range []string{"pkg04999", "pkg04000", "pkg03000", "pkg02000", "pkg01000"} {
		r.Specs = append(r.Specs, matchspec.MustParse(n))
	}
	b.ResetTimer()
	for b.Loop() {
		sol, err := Solve(context.Background(), r)
		if err != nil {
			if errors.Is(err, ErrUnsatisfiable) {
				continue // still a full search; the generator does not promise satisfiability
			}
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(sol.Records)), "records")
	}
}
