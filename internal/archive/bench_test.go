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
			for b.Loop() {
				es, err := Collect(root, CollectOptions{})
				if err != nil {
					b.Fatal(err)
				}
				opts := Options{Jobs: jobs, Symlinks: Refuse}
				if err := Encode(context.Background(), io.Discard, format, es, opts); err != nil {
					b.Fatal(err)
				}
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
			for b.Loop() {
				cmd := exec.Command("sh", "-c", script)
				cmd.Dir = root
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%s: %v\n%s", script, err, out)
				}
			}
		}
	}
	n := runtime.GOMAXPROCS(0)
	b.Run("targz/jobs=1", ours(TarGz, 1))
	b.Run(fmt.Sprintf("targz/jobs=%d", n), ours(TarGz, n))
	// The output goes through a pipe so tar cannot notice /dev/null and
	// skip reading the files.
	b.Run("tar|pigz-6", shell("tar cf - . | pigz -6 -p "+fmt.Sprint(n)+" | cat >/dev/null", "tar", "pigz"))
	b.Run("tar-czf", shell("tar czf - . | cat >/dev/null", "tar", "gzip"))
	b.Run(fmt.Sprintf("tarzst/jobs=%d", n), ours(TarZst, n))
	b.Run("tar|zstd-3", shell("tar cf - . | zstd -3 -T0 -q -c | cat >/dev/null", "tar", "zstd"))
	b.Run("zip/jobs=1", ours(Zip, 1))
	b.Run(fmt.Sprintf("zip/jobs=%d", n), ours(Zip, n))
	b.Run("tar", ours(Tar, 1))
}
