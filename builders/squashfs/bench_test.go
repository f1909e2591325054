package squashfs

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sparkenv/sparkenv/builders/condaenv"
	"github.com/sparkenv/sparkenv/internal/conda/engine"
	"github.com/sparkenv/sparkenv/internal/conda/fixture"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
)

// BenchmarkSquashfs compares the squashfs target with plain mksquashfs of
// the same installed tree, the baseline the goal refers to: the tree the
// target packs (the environment installed for /opt/conda with its .pyc
// files), made beforehand the way a person would (install, then python -m
// compileall), so that the baseline only packs.
//
// Two environments: "small" is the quickstart one (a stripped CPython
// 3.11 and a few noarch libraries: 22 MB, 33 MB with .pyc files); "large"
// adds the third-party libraries of this machine's CPython 3.11
// site-packages as noarch packages (380 MB with .pyc files, 46,000
// paths), skipped when that python is not there.
//
// target runs with warm caches (packages extracted, .pyc files compiled by
// an earlier build: any rebuild after the first); target-cold-pyc empties
// the .pyc cache before each build, so it compiles every module;
// target-without-pyc sets compile_pyc = false and is compared with plain
// mksquashfs of the tree without .pyc files. paired alternates target and
// baseline within each iteration and reports the ratio of their means.
func BenchmarkSquashfs(b *testing.B) {
	if testing.Short() {
		b.Skip("slow")
	}
	mk, err := exec.LookPath("mksquashfs")
	if err != nil {
		b.Skip("mksquashfs not installed")
	}
	t := &testing.T{}
	small, pkgs := lockedEnv(t)
	if small == nil {
		b.Skip("no fixture environment")
	}
	b.Run("small", func(b *testing.B) { benchEnv(b, mk, small, pkgs) })
	b.Run("large", func(b *testing.B) {
		large, pkgs := largeEnv(b)
		benchEnv(b, mk, large, pkgs)
	})
}

func benchEnv(b *testing.B, mk string, res *lock.Resolved, pkgs string) {
	ctx := context.Background()
	t := &testing.T{}
	off := false
	// The trees a person would pack: installed, with and without .pyc.
	work := b.TempDir()
	trees := map[bool]string{}
	for _, pyc := range []bool{false, true} {
		dir := filepath.Join(work, fmt.Sprint("tree-", pyc))
		req := request(t, res, pkgs, &Config{Environment: "environment.ml"})
		if _, err := condaenv.Stage(ctx, req, res, dir, "/opt/conda"); err != nil {
			b.Fatal(err)
		}
		if pyc {
			if _, err := condaenv.CompilePyc(ctx, req, res.Environment, dir, "/opt/conda"); err != nil {
				b.Fatal(err)
			}
		}
		trees[pyc] = dir
	}
	// Only Build is timed: making the request (which writes the
	// environment's artifact, as the planner has before any build) and
	// removing the output are not.
	build := func(b *testing.B, cfg *Config) {
		b.StopTimer()
		r := request(t, res, pkgs, cfg)
		b.StartTimer()
		if _, err := New().Build(ctx, r); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(r.TempDir)
		os.RemoveAll(r.OutDir)
		b.StartTimer()
	}
	build(b, &Config{Environment: "environment.ml"}) // fills the caches
	withPyc, withoutPyc := dirSize(trees[true]), dirSize(trees[false])
	// Each group starts with nothing left to write back to disk: the
	// caches just filled, or the images of the group before, would
	// otherwise be flushed while the next group runs.
	quiet := func(b *testing.B) {
		syscall.Sync()
		b.ResetTimer()
	}
	b.Run("target", func(b *testing.B) {
		quiet(b)
		b.SetBytes(withPyc)
		for i := 0; i < b.N; i++ {
			build(b, &Config{Environment: "environment.ml"})
		}
	})
	b.Run("plain-mksquashfs", func(b *testing.B) {
		quiet(b)
		b.SetBytes(withPyc)
		for i := 0; i < b.N; i++ {
			plain(b, mk, trees[true])
		}
	})
	b.Run("target-without-pyc", func(b *testing.B) {
		quiet(b)
		b.SetBytes(withoutPyc)
		for i := 0; i < b.N; i++ {
			build(b, &Config{Environment: "environment.ml", CompilePyc: &off})
		}
	})
	b.Run("plain-mksquashfs-without-pyc", func(b *testing.B) {
		quiet(b)
		b.SetBytes(withoutPyc)
		for i := 0; i < b.N; i++ {
			plain(b, mk, trees[false])
		}
	})
	// paired runs the target and the baseline one after the other in each
	// iteration, with and without .pyc files, and reports each one's mean
	// and the ratio: drift of the machine between groups cancels out.
	b.Run("paired", func(b *testing.B) {
		quiet(b)
		var sum [2][2]time.Duration // [pyc][target, plain]
		for i := 0; i < b.N; i++ {
			for k, pyc := range []bool{true, false} {
				cfg := &Config{Environment: "environment.ml"}
				if !pyc {
					cfg.CompilePyc = &off
				}
				r := request(t, res, pkgs, cfg)
				start := time.Now()
				if _, err := New().Build(ctx, r); err != nil {
					b.Fatal(err)
				}
				sum[k][0] += time.Since(start)
				os.RemoveAll(r.TempDir)
				os.RemoveAll(r.OutDir)
				start = time.Now()
				plain(b, mk, trees[pyc])
				sum[k][1] += time.Since(start)
			}
		}
		n := float64(b.N)
		b.ReportMetric(sum[0][0].Seconds()*1000/n, "target-ms")
		b.ReportMetric(sum[0][1].Seconds()*1000/n, "plain-ms")
		b.ReportMetric(float64(sum[0][0])/float64(sum[0][1]), "ratio")
		b.ReportMetric(sum[1][0].Seconds()*1000/n, "target-nopyc-ms")
		b.ReportMetric(sum[1][1].Seconds()*1000/n, "plain-nopyc-ms")
		b.ReportMetric(float64(sum[1][0])/float64(sum[1][1]), "ratio-nopyc")
	})
	b.Run("target-cold-pyc", func(b *testing.B) {
		quiet(b)
		b.SetBytes(withPyc)
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			if err := os.RemoveAll(filepath.Join(pkgs, "pyc")); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			build(b, &Config{Environment: "environment.ml"})
		}
	})
}

func plain(b *testing.B, mk, tree string) {
	b.StopTimer()
	out := filepath.Join(b.TempDir(), "x.sqfs")
	b.StartTimer()
	cmd := exec.Command(mk, tree, out, "-noappend", "-quiet", "-no-progress", "-comp", "zstd", "-Xcompression-level", "3")
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%v %s", err, o)
	}
	b.StopTimer()
	os.Remove(out)
	b.StartTimer()
}

// largeEnv is the quickstart python with this machine's CPython 3.11
// site-packages: one noarch package per top-level package directory.
func largeEnv(b *testing.B) (*lock.Resolved, string) {
	home, version := fixture.LocalPython("3.11")
	if home == "" {
		b.Skip("no CPython 3.11 under ~/.pyenv")
	}
	site := filepath.Join(home, "lib", "python3.11", "site-packages")
	ents, err := os.ReadDir(site)
	if err != nil {
		b.Skip(err)
	}
	ctx := context.Background()
	py, err := fixture.Python(ctx, home, version, fixture.PythonOptions{})
	if err != nil {
		b.Fatal(err)
	}
	py.Subdir = "linux-64"
	all := []fixture.Package{py}
	var names []string
	valid := regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)
	for _, e := range ents {
		name := strings.ToLower(strings.ReplaceAll(e.Name(), "_", "-"))
		if !e.IsDir() || strings.Contains(e.Name(), ".") || e.Name() == "__pycache__" || !valid.MatchString(name) {
			continue
		}
		p := fixture.NoarchPython("site-"+name, "1.0", nil, nil)
		root := filepath.Join(site, e.Name())
		err := filepath.WalkDir(root, func(q string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "__pycache__" {
				return filepath.SkipDir
			}
			if !d.Type().IsRegular() || strings.HasSuffix(q, ".pyc") {
				return nil
			}
			data, err := os.ReadFile(q)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(site, q)
			p.Files["site-packages/"+filepath.ToSlash(rel)] = fixture.File{Data: data}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		all = append(all, p)
		names = append(names, p.Name)
	}
	sort.Strings(names)
	dir := b.TempDir()
	channel := filepath.Join(dir, "channel")
	if err := fixture.WriteChannel(ctx, channel, all, fixture.ChannelOptions{Subdirs: []string{"linux-64"}}); err != nil {
		b.Fatal(err)
	}
	pkgs := filepath.Join(dir, "pkgs")
	env, err := (&engine.Engine{PkgsDir: pkgs}).Solve(ctx, engine.SolveRequest{
		Platform: "linux-64", Channels: []string{channel}, Specs: append([]string{"python 3.11.*"}, names...)})
	if err != nil {
		b.Fatal(err)
	}
	return &lock.Resolved{Name: "ml", Prefix: "/opt/conda", Environment: env}, pkgs
}

func dirSize(root string) int64 {
	var n int64
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
		return nil
	})
	return n
}
