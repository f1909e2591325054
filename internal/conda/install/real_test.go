package install

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/sparkenv/sparkenv/internal/testutil"
)

// TestRealPackages installs real conda packages extracted by
// conda-package-handling (an independent extractor) and checks every
// installed file against the hashes conda-build wrote into paths.json.
func TestRealPackages(t *testing.T) {
	t.Parallel()
	cph := testutil.Tool(t, "cph")
	examples := "/usr/share/doc/conda-package-handling/examples"
	work := t.TempDir()
	var pkgs []Package
	for _, f := range []string{"cph_test_data-0.0.1-0.tar.bz2", "mock-2.0.0-py37_1000.conda"} {
		archive := filepath.Join(examples, f)
		if _, err := os.Stat(archive); err != nil {
			t.Skipf("example package %s not installed with conda-package-handling", archive)
		}
		dir := filepath.Join(work, "pkgs", f)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		run(t, cph, "x", archive, "--dest", dir)
		pkgs = append(pkgs, Package{Dir: dir})
	}
	env := filepath.Join(work, "env")
	rep, err := Install(context.Background(), env, pkgs, Options{AllowHardlinks: true, TargetPrefix: "/opt/conda"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Files < 40 {
		t.Fatalf("only %d files installed", rep.Files)
	}
	for link, want := range map[string]string{
		"libexec/greetings": "../bin/hello",
		"lib/terminfo":      "../share/terminfo",
		"lib/libdangle.lib": "libdangle.lib.1", // dangling, kept as is
		"lib/python3.1":     "python3.10",
	} {
		if got, err := os.Readlink(filepath.Join(env, link)); err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %q", link, got, err, want)
		}
	}
	for _, p := range pkgs {
		var doc struct {
			Paths []struct {
				Path     string `json:"_path"`
				PathType string `json:"path_type"`
				SHA256   string `json:"sha256"`
				Size     int64  `json:"size_in_bytes"`
			} `json:"paths"`
		}
		b, err := os.ReadFile(filepath.Join(p.Dir, "info", "paths.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		for _, e := range doc.Paths {
			if e.PathType != "hardlink" {
				continue
			}
			sum, size := fileSum(t, filepath.Join(env, e.Path))
			if sum != e.SHA256 || size != e.Size {
				t.Errorf("%s: installed %s/%d, paths.json says %s/%d", e.Path, sum, size, e.SHA256, e.Size)
			}
		}
	}
	checkMetaMatchesTreeLoose(t, env)
}

// checkMetaMatchesTreeLoose is checkMetaMatchesTree for records made from
// index.json alone, which have no url, channel or hashes of the archive.
func checkMetaMatchesTreeLoose(t *testing.T, env string) {
	t.Helper()
	metas, _ := filepath.Glob(filepath.Join(env, "conda-meta", "*.json"))
	if len(metas) != 2 {
		t.Fatalf("conda-meta holds %v", metas)
	}
	for _, mp := range metas {
		var m map[string]any
		b, _ := os.ReadFile(mp)
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, f := range toStrings(m["files"]) {
			if _, err := os.Lstat(filepath.Join(env, f)); err != nil {
				t.Errorf("%s lists %s: %v", filepath.Base(mp), f, err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(env, "conda-meta", "history")); err != nil {
		t.Fatal(err)
	}
}
