//go:build unix

package condaindex

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sparkenv/sparkenv/internal/conda/fixture"
)

// benchChannel writes n noarch packages, each with size bytes of random
// (incompressible) payload, and returns the channel and its package files.
func benchChannel(b *testing.B, n, size int) (string, []string, int64) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	pkgs := make([]fixture.Package, n)
	for i := range pkgs {
		name := fmt.Sprintf("bench%03d", i)
		p := fixture.NoarchPython(name, "1.0", map[string]string{name + "/__init__.py": "X = 1\n"}, nil)
		data := make([]byte, size)
		for j := 0; j+8 <= len(data); j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				data[j+k] = byte(v >> (8 * k))
			}
		}
		p.Files["site-packages/"+name+"/payload.bin"] = fixture.File{Data: data}
		pkgs[i] = p
	}
	dir := b.TempDir()
	if err := fixture.WriteChannel(context.Background(), dir, pkgs, fixture.ChannelOptions{Subdirs: []string{"linux-64"}}); err != nil {
		b.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "noarch", "*.conda"))
	var total int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			b.Fatal(err)
		}
		total += fi.Size()
	}
	return dir, files, total
}

// cpuTime is the user and system time this process has used: on a loaded
// machine it compares better than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, d time.Duration) {
	b.ReportMetric(float64(d.Milliseconds())/float64(b.N), "cpu-ms/op")
}

// BenchmarkIndex indexes a few hundred packages from scratch and, beside
// it, times sha256sum over the same files: once as one process, and split
// over one process per core. Indexing hashes sha256 and md5 and reads
// info/, so one sha256 pass is its floor.
func BenchmarkIndex(b *testing.B) {
	dir, files, total := benchChannel(b, 300, 300<<10)
	ctx := context.Background()
	b.Run("index", func(b *testing.B) {
		b.SetBytes(total)
		start := cpuTime()
		for b.Loop() {
			if _, err := Index(ctx, dir, Options{Zst: true, Shards: true, Channeldata: true, HTML: true, NoCache: true}); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpuTime()-start)
	})
	// What `sparkenv index DIR` writes by default: no shards.
	b.Run("index-cli-defaults", func(b *testing.B) {
		b.SetBytes(total)
		start := cpuTime()
		for b.Loop() {
			if _, err := Index(ctx, dir, Options{Zst: true, Channeldata: true, HTML: true, NoCache: true}); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpuTime()-start)
	})
	// Without the shards (one fsync'd file per package name) nor the
	// pages: the reading and hashing alone, plus repodata.json and .zst.
	b.Run("index-json-zst", func(b *testing.B) {
		b.SetBytes(total)
		start := cpuTime()
		for b.Loop() {
			if _, err := Index(ctx, dir, Options{Zst: true, NoCache: true}); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpuTime()-start)
	})
	b.Run("index-unchanged", func(b *testing.B) {
		if _, err := Index(ctx, dir, Options{Zst: true}); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(total)
		start := cpuTime()
		for b.Loop() {
			if _, err := Index(ctx, dir, Options{Zst: true}); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpuTime()-start)
	})
	sha256sum, err := exec.LookPath("sha256sum")
	if err != nil {
		b.Log("no sha256sum to compare with")
		return
	}
	b.Run("sha256sum", func(b *testing.B) {
		b.SetBytes(total)
		var used time.Duration
		for b.Loop() {
			cmd := exec.Command(sha256sum, files...)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v: %s", err, out)
			}
			used += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		}
		reportCPU(b, used)
	})
	b.Run("sha256sum-all-cores", func(b *testing.B) {
		n := runtime.GOMAXPROCS(0)
		b.SetBytes(total)
		var mu sync.Mutex
		var used time.Duration
		for b.Loop() {
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				var part []string
				for j := i; j < len(files); j += n {
					part = append(part, files[j])
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					cmd := exec.Command(sha256sum, part...)
					errs[i] = cmd.Run()
					if errs[i] == nil {
						mu.Lock()
						used += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		reportCPU(b, used)
	})
}
