package cli

import (
	"io"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sparkenv/sparkenv/internal/testutil"
)

// BenchmarkNoopBuild200 is the in-process no-op build of the workspace
// scripts/genworkspace.sh makes (the figure `make bench` reports runs the
// binary instead; this one is for profiling).
func BenchmarkNoopBuild200(b *testing.B) {
	dir := b.TempDir()
	if out, err := exec.Command("bash", filepath.Join(testutil.Root(), "scripts", "genworkspace.sh"), dir, "200").CombinedOutput(); err != nil {
		b.Fatalf("%v\n%s", err, out)
	}
	if code := Main([]string{"-C", dir, "build"}, nil, io.Discard, io.Discard); code != 0 {
		b.Fatalf("first build exited %d", code)
	}
	time.Sleep(2100 * time.Millisecond) // past the racy-timestamp window
	Main([]string{"-C", dir, "build"}, nil, io.Discard, io.Discard)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if code := Main([]string{"-C", dir, "build"}, nil, io.Discard, io.Discard); code != 0 {
			b.Fatalf("build exited %d", code)
		}
	}
}
