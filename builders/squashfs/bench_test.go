package squashfs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkSquashfs compares the squashfs target (install from a warm
// package cache, then mksquashfs) with plain mksquashfs of the same
// installed tree (the baseline the goal refers to), and shows what the
// default hash-based .pyc compilation adds on top ("target").
func BenchmarkSquashfs(b *testing.B) {
	if testing.Short() {
		b.Skip("slow")
	}
	mk, err := exec.LookPath("mksquashfs")
	if err != nil {
		b.Skip("mksquashfs not installed")
	}
	res, pkgs := lockedEnv(&testing.T{})
	if res == nil {
		b.Skip("no fixture environment")
	}
	ctx := context.Background()
	// One build stages the installed tree (without .pyc) that plain
	// mksquashfs packs: the same tree target-without-pyc installs and packs.
	t := &testing.T{}
	off := false
	req := request(t, res, pkgs, &Config{Environment: "environment.ml", CompilePyc: &off})
	if _, err := New().Build(ctx, req); err != nil {
		b.Fatal(err)
	}
	tree := filepath.Join(req.TempDir, "root")
	size := dirSize(tree)
	b.Run("target", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			r := request(t, res, pkgs, &Config{Environment: "environment.ml"})
			if _, err := New().Build(ctx, r); err != nil {
				b.Fatal(err)
			}
			os.RemoveAll(r.TempDir)
			os.RemoveAll(r.OutDir)
		}
	})
	b.Run("target-without-pyc", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			r := request(t, res, pkgs, &Config{Environment: "environment.ml", CompilePyc: &off})
			if _, err := New().Build(ctx, r); err != nil {
				b.Fatal(err)
			}
			os.RemoveAll(r.TempDir)
			os.RemoveAll(r.OutDir)
		}
	})
	b.Run("target-pack-step", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			out := filepath.Join(b.TempDir(), "x.sqfs")
			if err := New().pack(ctx, req, tree, out, &Config{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plain-mksquashfs", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			out := filepath.Join(b.TempDir(), "x.sqfs")
			cmd := exec.Command(mk, tree, out, "-noappend", "-quiet", "-no-progress", "-comp", "zstd", "-Xcompression-level", "3")
			if o, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v %s", err, o)
			}
		}
	})
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
