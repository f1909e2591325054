package pkg

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// seedArchives adds small real packages of both formats to the corpus.
func seedArchives(f *testing.F) {
	for _, fm := range formats {
		_, archive := build(f, "seed", fm)
		b, err := os.ReadFile(archive)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, fm == Conda)
	}
	f.Add([]byte("PK\x03\x04"), true)
	f.Add([]byte("BZh9"), false)
}

func fuzzArchive(t *testing.T, data []byte, conda bool) string {
	name := "seed-1.0-h0_0.tar.bz2"
	if conda {
		name = "seed-1.0-h0_0.conda"
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func FuzzReadInfo(f *testing.F) {
	seedArchives(f)
	f.Fuzz(func(t *testing.T, data []byte, conda bool) {
		info, err := readInfo(context.Background(), fuzzArchive(t, data, conda), ExtractOptions{MaxBytes: 4 << 20, MaxMembers: 1000})
		if err == nil && info.Index.Name == "" {
			t.Fatal("an Info without a name")
		}
	})
}

func FuzzExtract(f *testing.F) {
	seedArchives(f)
	f.Fuzz(func(t *testing.T, data []byte, conda bool) {
		archive := fuzzArchive(t, data, conda)
		dir := t.TempDir()
		dest := filepath.Join(dir, "out")
		err := Extract(context.Background(), archive, dest, ExtractOptions{MaxBytes: 4 << 20, MaxMembers: 1000})
		entries, _ := os.ReadDir(dir)
		if err != nil {
			for _, e := range entries {
				if e.Name() != filepath.Base(archive) {
					t.Fatalf("failed extraction left %s behind", e.Name())
				}
			}
			return
		}
		// Whatever was written stays inside dest.
		filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type()&os.ModeSymlink != 0 {
				target, err := filepath.EvalSymlinks(p)
				if err == nil {
					rel, _ := filepath.Rel(dest, target)
					if rel == ".." || len(rel) > 2 && rel[:3] == "../" {
						t.Fatalf("symlink %s resolves outside: %s", p, target)
					}
				}
			}
			return nil
		})
	})
}
