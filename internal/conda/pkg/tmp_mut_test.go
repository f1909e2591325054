package pkg

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestTmpTiming(t *testing.T) {
	for _, f := range formats {
		_, archive := build(t, "seed", f)
		b, _ := os.ReadFile(archive)
		start := time.Now()
		for i := 0; i < 50; i++ {
			p := fuzzArchive(t, b, f == Conda)
			if err := Extract(context.Background(), p, filepath.Join(t.TempDir(), "x"), ExtractOptions{MaxBytes: 4 << 20, MaxMembers: 1000}); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%v: %v per extract", f, time.Since(start)/50)
	}
}
