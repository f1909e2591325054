package archive

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// longDir is a directory path well past the 100 bytes of a plain tar name.
var longDir = "lib/" + strings.Repeat("very-long-directory-name/", 6) + "and-then-some"

// makeTree writes a small tree exercising what archives must keep: an
// executable, a symlink, an empty directory, a long path, a non-ASCII name,
// Python caches, and a file big enough to span several compression blocks.
func makeTree(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]struct {
		data string
		mode os.FileMode
	}{
		"bin/run.sh":               {"#!/bin/sh\necho hi\n", 0o775},
		"lib/a.txt":                {"alpha\n", 0o600},
		longDir + "/leaf-file.txt": {"deep\n", 0o644},
		"pkg/__init__.py":          {"", 0o644},
		"pkg/mod.py":               {"def f():\n    return 42\n", 0o644},
		"pkg/mod.pyc":              {"junk", 0o644},
		"pkg/__pycache__/mod.pyc":  {"junk", 0o644},
		"tests/test_mod.py":        {"assert True\n", 0o644},
		"données/é.txt":            {"utf8\n", 0o644},
		"big/blob.bin":             {string(genData(3<<20+12345, 1)), 0o644},
	}
	for p, f := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("lib/a.txt", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	// A link whose target does not fit the 100 bytes of a tar header.
	if err := os.Symlink(longDir+"/leaf-file.txt", filepath.Join(root, "longlink")); err != nil {
		t.Fatal(err)
	}
	return root
}

// genData returns n bytes of mixed content: word-like text (compresses
// about 3-4x) with stretches of random bytes, the same for the same seed.
func genData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	words := []string{"spark", "conda", "python", "archive", "executor", "driver", "import ", "def ", "return ", "\n", "    ", "self.", "numpy", "=", "(", ")", ":", ","}
	var b bytes.Buffer
	b.Grow(n)
	for b.Len() < n {
		if r.IntN(10) == 0 {
			chunk := make([]byte, 512+r.IntN(4096))
			for i := range chunk {
				chunk[i] = byte(r.Uint32())
			}
			b.Write(chunk)
			continue
		}
		for range 200 {
			b.WriteString(words[r.IntN(len(words))])
		}
	}
	return b.Bytes()[:n]
}
