package condapack

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/sparkenv/sparkenv/internal/archive"
	"github.com/sparkenv/sparkenv/internal/conda/engine"
	"github.com/sparkenv/sparkenv/internal/conda/fixture"
)

var big struct {
	once  sync.Once
	dir   string
	stage string
	bytes int64
	err   error
}

// bigPackages are noarch python packages of about 80 MB each: half
// pseudo-random bytes (incompressible, like wheels of native code), half
// word soup (compressible, like sources and data files), in files of a few
// MB as real packages have.
func bigPackages() []fixture.Package {
	words := strings.Fields("spark executor driver archive environment python conda package prefix placeholder " +
		"partition shuffle broadcast dataframe column schema parquet arrow vector kernel tensor matrix")
	var pkgs []fixture.Package
	for i := range 4 {
		r := rand.New(rand.NewChaCha8([32]byte{byte(i + 1)}))
		name := fmt.Sprintf("bigdata%d", i)
		mods := map[string]string{name + "/__init__.py": "SIZE = 80\n"}
		for j := range 10 {
			b := make([]byte, 4<<20)
			for k := range b {
				b[k] = byte(r.Uint32())
			}
			mods[fmt.Sprintf("%s/native/lib%02d.so", name, j)] = string(b)
			var sb strings.Builder
			for sb.Len() < 4<<20 {
				sb.WriteString(words[r.IntN(len(words))])
				if r.IntN(12) == 0 {
					sb.WriteByte('\n')
				} else {
					sb.WriteByte(' ')
				}
			}
			mods[fmt.Sprintf("%s/data/part%02d.txt", name, j)] = sb.String()
		}
		pkgs = append(pkgs, fixture.NoarchPython(name, "1.0", mods, nil))
	}
	return pkgs
}

// bigEnv installs the fixture python and the big packages once, for the
// packing prefix, and returns the tree and its size in bytes.
func bigEnv(b *testing.B) (string, int64) {
	b.Helper()
	if testing.Short() {
		b.Skip("builds a 300+ MB environment")
	}
	home, version := fixture.LocalPython("3.11")
	if home == "" {
		b.Skip("no local CPython 3.11 for the fixture python")
	}
	big.once.Do(func() {
		ctx := context.Background()
		big.dir, big.err = os.MkdirTemp("", "condapack-bench-")
		if big.err != nil {
			return
		}
		py, err := fixture.Python(ctx, home, version, fixture.PythonOptions{})
		if err != nil {
			big.err = err
			return
		}
		pkgs := append(bigPackages(), py)
		ch := filepath.Join(big.dir, "channel")
		if big.err = fixture.WriteChannel(ctx, ch, pkgs, fixture.ChannelOptions{Subdirs: []string{"linux-64"}, ZstdLevel: 1}); big.err != nil {
			return
		}
		e := &engine.Engine{PkgsDir: filepath.Join(big.dir, "pkgs")}
		env, err := e.Solve(ctx, engine.SolveRequest{Platform: "linux-64", Channels: []string{ch},
			Specs: []string{"python 3.11.*", "bigdata0", "bigdata1", "bigdata2", "bigdata3"}})
		if err != nil {
			big.err = err
			return
		}
		big.stage = filepath.Join(big.dir, "stage")
		if _, big.err = e.Install(ctx, env, big.stage, engine.InstallOptions{TargetPrefix: PackPrefix, AllowHardlinks: true}); big.err != nil {
			return
		}
		big.err = filepath.WalkDir(big.stage, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				info, err := d.Info()
				if err == nil {
					big.bytes += info.Size()
				}
			}
			return err
		})
	})
	if big.err != nil {
		b.Fatal(big.err)
	}
	if big.bytes < 300<<20 {
		b.Fatalf("benchmark environment is only %d MB", big.bytes>>20)
	}
	return big.stage, big.bytes
}

// BenchmarkCondaPack packs one installed environment of 300+ MB the way the
// builder does, and with the usual shell tools, so that MB/s compare side
// by side.
func BenchmarkCondaPack(b *testing.B) {
	stage, size := bigEnv(b)
	out := filepath.Join(b.TempDir(), "env.tar.gz")
	jobs := runtime.NumCPU()
	b.Logf("environment: %d MB, %d CPUs", size>>20, jobs)
	for _, c := range []struct {
		name string
		o    PackOptions
	}{
		{fmt.Sprintf("sparkenv-tar.gz-4-j%d", jobs), PackOptions{Format: archive.TarGz, Level: 4, Jobs: jobs, Relocatable: true}},
		{"sparkenv-tar.gz-4-j1", PackOptions{Format: archive.TarGz, Level: 4, Jobs: 1, Relocatable: true}},
		{fmt.Sprintf("sparkenv-tar.zst-4-j%d", jobs), PackOptions{Format: archive.TarZst, Level: 4, Jobs: jobs, Relocatable: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				if _, err := Pack(context.Background(), stage, out, c.o); err != nil {
					b.Fatal(err)
				}
			}
			reportRatio(b, out, size)
		})
	}
	shell := func(name, script string, tools ...string) {
		for _, tool := range tools {
			if _, err := exec.LookPath(tool); err != nil {
				b.Logf("%s: %s not found, skipped", name, tool)
				return
			}
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				cmd := exec.Command("bash", "-o", "pipefail", "-c", script, "bash", stage, out)
				if msg, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%v\n%s", err, msg)
				}
			}
			reportRatio(b, out, size)
		})
	}
	shell("tar-pigz-4", `tar cf - -C "$1" . | pigz -4 > "$2"`, "bash", "tar", "pigz")
	shell("tar-czf", `tar czf "$2" -C "$1" .`, "bash", "tar", "gzip")
}

func reportRatio(b *testing.B, out string, size int64) {
	if info, err := os.Stat(out); err == nil {
		b.ReportMetric(float64(info.Size())/float64(size), "ratio")
	}
}

// TestMain of this package removes the benchmark environment too.
func init() {
	cleanups = append(cleanups, func() {
		if big.dir != "" {
			os.RemoveAll(big.dir)
		}
	})
}
