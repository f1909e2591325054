package pex

import (
	"context"
	"io"
	"testing"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/pex/pextest"
)

// BenchmarkPexBuild builds a PEX of 20 wheels holding 50 MB of files (half
// Python text, half random bytes) from a warm package cache: unpacking,
// hashing and zipping, the part sparkenv does on every rebuild.
func BenchmarkPexBuild(b *testing.B) {
	const total = 50 << 20
	ws := pextest.Wheels(b, b.TempDir(), pextest.Bulk(20, total)...)
	env := pextest.EnvInput(b, "etl", ws)
	cache := b.TempDir()
	b.SetBytes(total)
	b.ResetTimer()
	for b.Loop() {
		req := &builders.Request{
			Address: "target.pex.job", Name: "job", Config: &Config{Environment: "environment.etl"},
			Inputs: []builders.Input{env}, OutDir: b.TempDir(), TempDir: b.TempDir(),
			Log: io.Discard, PackageCacheDir: cache, Jobs: 2,
		}
		if _, err := New().Build(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}
