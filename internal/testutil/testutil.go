// Package testutil finds the real tools and data that tests run against:
// programs on PATH or under the module's .tools/bin, the npm rattler oracle,
// and ../shared/conda-data. A missing tool skips the test with the command
// that installs it, except in CI (CI=true), where the Makefile has installed
// everything and a missing tool is a failure.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Root is the module root (the directory holding go.mod).
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// missing skips, or fails in CI.
func missing(t testing.TB, what, install string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (in CI the Makefile installs it: %s)", what, install)
	}
	t.Skipf("%s is not installed; run `%s`", what, install)
}

// Tool returns the path of program name, looking in .tools/bin first, then
// PATH; it skips the test when the program is absent.
func Tool(t testing.TB, name string) string {
	t.Helper()
	if p := filepath.Join(Root(), ".tools", "bin", name); isExec(p) {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	missing(t, name, "make deps")
	return ""
}

// Rattler returns the directory of the npm package @conda-org/rattler.
func Rattler(t testing.TB) string {
	t.Helper()
	node := Tool(t, "node")
	_ = node
	dir := filepath.Join(Root(), "tools", "npm", "node_modules", "@conda-org", "rattler")
	if _, err := os.Stat(filepath.Join(dir, "package.json")); err != nil {
		missing(t, "npm package @conda-org/rattler", "make deps")
	}
	return dir
}

// CondaData returns ../shared/conda-data/name, or skips the test when the
// shared data is not beside the checkout (a checkout of the project alone
// still passes its tests).
func CondaData(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(Root(), "..", "shared", "conda-data", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared conda data %s not found beside the checkout", name)
	}
	return p
}

// Python returns the path of a pyenv interpreter of version prefix
// (e.g. "3.11"), or skips.
func Python(t testing.TB, version string) string {
	t.Helper()
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".pyenv")
	}
	matches, _ := filepath.Glob(filepath.Join(root, "versions", version+".*", "bin", "python"+version))
	for _, m := range matches {
		if isExec(m) {
			return m
		}
	}
	if p, err := exec.LookPath("python" + version); err == nil {
		return p
	}
	t.Skipf("no python%s interpreter found", version)
	return ""
}

func isExec(p string) bool {
	info, err := os.Stat(p)
	return err == nil && !info.IsDir() && info.Mode()&0o111 != 0
}
