package venvpack

import (
	"context"
	"io"
	"os"
	"testing"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/pex/pextest"
	"github.com/sparkenv/sparkenv/internal/execx"
)

// BenchmarkVenvPackBuild builds a linked venv_pack (tar.gz) of the same 20
// wheels and 50 MB as BenchmarkPexBuild, from a warm package cache:
// "plain" installs and packs; "pyc" also compiles the 25 MB of Python with
// the interpreter when /usr/bin/python3.11 exists here.
func BenchmarkVenvPackBuild(b *testing.B) {
	const total = 50 << 20
	ws := pextest.Wheels(b, b.TempDir(), pextest.Bulk(20, total)...)
	env := pextest.EnvInput(b, "etl", ws)
	cache := b.TempDir()
	for _, compile := range []bool{false, true} {
		name := "plain"
		if compile {
			name = "pyc"
		}
		b.Run(name, func(b *testing.B) {
			if _, err := os.Stat("/usr/bin/python3.11"); compile && err != nil {
				b.Skip("no /usr/bin/python3.11 to compile with")
			}
			b.SetBytes(total)
			for b.Loop() {
				req := &builders.Request{
					Address: "target.venv_pack.etl", Name: "etl",
					Config: &Config{Environment: "environment.etl", Python: "/usr/bin/python3.11", PythonVersion: "3.11", Compile: &compile},
					Inputs: []builders.Input{env}, OutDir: b.TempDir(), TempDir: b.TempDir(),
					Log: io.Discard, Runner: &execx.Runner{Env: os.Environ()}, PackageCacheDir: cache, Jobs: 2,
				}
				if _, err := New().Build(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
