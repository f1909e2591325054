package archive

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// benchTree writes about 100 MB in a few thousand files: mostly small and
// medium text-like files, some larger ones, a share of random bytes, like
// a Python environment.
func benchTree(b *testing.B) (string, int64) {
	b.Helper()
	root := b.TempDir()
	var total int64
	for i := range 3000 {
		size := 4<<10 + (i*7919)%(40<<10) // 4..44 KiB
		if i%300 == 0 {
			size = 3 << 20
		}
		dir := filepath.Join(root, fmt.Sprintf("pkg%02d", i%40), fmt.Sprintf("sub%d", i%7))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		data := genData(size, uint64(i))
		mode := os.FileMode(0o644)
		if i%50 == 0 {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d.py", i)), data, mode); err != nil {
			b.Fatal(err)
		}
		total += int64(size)
	}
	// Flush the fresh tree to disk first: otherwise write-back of 100 MB
	// competes with the first timings.
	syscall.Sync()
	return root, total
}

// BenchmarkTarGz compares the package's writers with the system's tar,
// pigz and zstd on the same tree; MB/s are of input bytes.
func BenchmarkTarGz(b *testing.B) {
	root, total := benchTree(b)
	ours := func(format Format, jobs int) func(b *testing.B) {
		return func(b *testing.B) {
			b.SetBytes(total)
			defer reportCPU(b, total, syscall.RUSAGE_SELF)()
			for b.Loop() {
				es, err := Collect(root, CollectOptions{})
				if err != nil {
					b.Fatal(err)
				}
				opts := Options{Jobs: jobs, Symlinks: Refuse}
				cw := &countWriter{w: io.Discard}
				if err := Encode(context.Background(), cw, format, es, opts); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(cw.n)/float64(total), "out/in")
			}
		}
	}
	shell := func(script string, tools ...string) func(b *testing.B) {
		return func(b *testing.B) {
			for _, t := range tools {
				if _, err := exec.LookPath(t); err != nil {
					b.Skipf("%s not installed", t)
				}
			}
			b.SetBytes(total)
			defer reportCPU(b, total, syscall.RUSAGE_CHILDREN)()
			for b.Loop() {
				cmd := exec.Command("sh", "-c", script+" | wc -c")
				cmd.Dir = root
				out, err := cmd.Output()
				if err != nil {
					b.Fatalf("%s: %v\n%s", script, err, out)
				}
				var n int64
				fmt.Sscan(string(out), &n)
				b.ReportMetric(float64(n)/float64(total), "out/in")
			}
		}
	}
	n := runtime.GOMAXPROCS(0)
	b.Run("targz/jobs=1", ours(TarGz, 1))
	b.Run(fmt.Sprintf("targz/jobs=%d", n), ours(TarGz, n))
	// The output goes through a pipe (to wc) so tar cannot notice
	// /dev/null and skip reading the files.
	b.Run("tar|pigz-6", shell("tar cf - . | pigz -6 -p "+fmt.Sprint(n), "tar", "pigz"))
	b.Run("tar-czf", shell("tar czf - .", "tar", "gzip"))
	b.Run(fmt.Sprintf("tarzst/jobs=%d", n), ours(TarZst, n))
	b.Run("tar|zstd-3", shell("tar cf - . | zstd -3 -T0 -q -c", "tar", "zstd"))
	b.Run("zip/jobs=1", ours(Zip, 1))
	b.Run(fmt.Sprintf("zip/jobs=%d", n), ours(Zip, n))
	b.Run("tar", ours(Tar, 1))
}

// reportCPU adds the CPU time used per operation and the input MB per CPU
// second: on a busy machine wall-clock MB/s say more about the neighbours
// than about the code, CPU time does not. who is RUSAGE_SELF for the
// in-process writers, RUSAGE_CHILDREN for the external tools.
func reportCPU(b *testing.B, total int64, who int) func() {
	cpu := func() float64 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err != nil {
			b.Fatal(err)
		}
		return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	start := cpu()
	return func() {
		used := cpu() - start
		if b.N == 0 || used <= 0 {
			return
		}
		b.ReportMetric(used/float64(b.N), "cpu-s/op")
		b.ReportMetric(float64(total)*float64(b.N)/used/1e6, "MB/cpu-s")
	}
}
