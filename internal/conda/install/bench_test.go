package install

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// benchEnv writes nPkgs extracted packages of filesPer files each (sizes
// from 1 KiB to 1 MiB, mostly small, like a real environment; one file in
// fifty has a text placeholder) and returns them with their total size.
func benchEnv(b *testing.B, root string, nPkgs, filesPer int) ([]Package, int64) {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	ph := placeholder255()
	var pkgs []Package
	var total int64
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte('a' + r.IntN(26))
	}
	for p := range nPkgs {
		spec := pkgSpec{name: fmt.Sprintf("pkg%03d", p)}
		for f := range filesPer {
			size := 1<<10 + r.IntN(16<<10)
			if r.IntN(20) == 0 {
				size = 256<<10 + r.IntN(768<<10)
			}
			off := r.IntN(len(chunk) - size + 1)
			fs := fileSpec{
				path: fmt.Sprintf("lib/%s/mod%02d/file%04d.py", spec.name, f%17, f),
				data: string(chunk[off : off+size]),
			}
			if f%50 == 0 {
				fs.placeholder = ph
				fs.data = "#!" + ph + "/bin/python3.11\n" + fs.data[:min(len(fs.data), 4096)] + ph + "\n"
				fs.exec = true
			}
			total += int64(len(fs.data))
			spec.files = append(spec.files, fs)
		}
		pkgs = append(pkgs, makePkg(b, root, spec))
	}
	return pkgs, total
}

// benchScale multiplies the size of BenchmarkInstall's environment: 5 gives
// about 20,000 files and 800 MB (go test -bench Install -args -install.scale=5).
var benchScale = flag.Int("install.scale", 1, "size of BenchmarkInstall's environment, in units of 40 packages of 100 files")

// BenchmarkInstall installs about 4,000 files (about 170 MB) and reports
// MB/s; BenchmarkInstall/tar is plain tar extraction of the same payload,
// the yardstick.
func BenchmarkInstall(b *testing.B) {
	work := b.TempDir()
	pkgs, total := benchEnv(b, filepath.Join(work, "pkgs"), 40*max(1, *benchScale), 100)
	for _, mode := range []struct {
		name string
		hard bool
	}{{"copy", false}, {"hardlink", true}} {
		b.Run(mode.name, func(b *testing.B) {
			b.SetBytes(total)
			out := filepath.Join(work, "out-"+mode.name)
			for i := 0; b.Loop(); i++ {
				env := filepath.Join(out, fmt.Sprint(i))
				if _, err := Install(context.Background(), env, pkgs, Options{AllowHardlinks: mode.hard, TargetPrefix: "/opt/conda"}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(env)
				b.StartTimer()
			}
		})
	}
	b.Run("tar", func(b *testing.B) {
		tarBin, err := exec.LookPath("tar")
		if err != nil {
			b.Skip("no tar")
		}
		// One tar of every package payload, as the plain-copy yardstick.
		archive := filepath.Join(work, "payload.tar")
		args := []string{"-cf", archive}
		for _, p := range pkgs {
			args = append(args, "-C", p.Dir, "lib")
		}
		if out, err := exec.Command(tarBin, args...).CombinedOutput(); err != nil {
			b.Fatalf("tar: %v\n%s", err, out)
		}
		b.SetBytes(total)
		for i := 0; b.Loop(); i++ {
			dir := filepath.Join(work, "tar-out", fmt.Sprint(i))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			if out, err := exec.Command(tarBin, "-xf", archive, "-C", dir).CombinedOutput(); err != nil {
				b.Fatalf("tar: %v\n%s", err, strings.TrimSpace(string(out)))
			}
			b.StopTimer()
			os.RemoveAll(dir)
			b.StartTimer()
		}
	})
}
