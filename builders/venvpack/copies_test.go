package venvpack

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sparkenv/sparkenv/builders/pex/pextest"
	"github.com/sparkenv/sparkenv/internal/conda/engine"
	condafix "github.com/sparkenv/sparkenv/internal/conda/fixture"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/testutil"
)

// condaPythonEnv is an environment of a real relocatable conda python
// package (made from the local CPython 3.11) plus the test wheels.
func condaPythonEnv(t *testing.T) *fixture {
	t.Helper()
	testutil.Python(t, "3.11")
	patchelf := testutil.Tool(t, "patchelf")
	home, version := condafix.LocalPython("3.11")
	strip, _ := exec.LookPath("strip")
	ctx := context.Background()
	py, err := condafix.Python(ctx, home, version, condafix.PythonOptions{Patchelf: patchelf, Strip: strip})
	if err != nil {
		t.Fatal(err)
	}
	ch := t.TempDir()
	if err := condafix.WriteChannel(ctx, ch, []condafix.Package{py}, condafix.ChannelOptions{Subdirs: []string{"linux-64"}}); err != nil {
		t.Fatal(err)
	}
	pkgs := t.TempDir()
	env, err := (&engine.Engine{PkgsDir: pkgs}).Solve(ctx, engine.SolveRequest{Platform: "linux-64", Channels: []string{ch}, Specs: []string{"python 3.11.*"}})
	if err != nil {
		t.Fatal(err)
	}
	env.Pip = pextest.Wheels(t, t.TempDir(), pextest.Pair()...)
	in := pextest.EnvInput(t, "etl", nil)
	b, _ := json.Marshal(&lock.Resolved{Name: "etl", Prefix: "/opt/conda", Environment: env})
	if err := os.WriteFile(filepath.Join(in.Dir, lock.ResolvedFileName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return &fixture{env: in, cache: pkgs}
}

func TestCopiesShipsTheInterpreter(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("packs a whole CPython")
	}
	f := condaPythonEnv(t)
	archive, log := f.build(t, &Config{Copies: true})
	if strings.Contains(log, "WARNING") {
		t.Errorf("warning in copies mode:\n%s", log)
	}
	base := t.TempDir()
	for _, dir := range []string{filepath.Join(base, "a"), filepath.Join(base, "b")} {
		untar(t, archive, dir)
		// No python on PATH, no pyenv: only what the archive holds.
		cmd := exec.Command(filepath.Join(dir, "bin", "python"), "-c",
			"import sys, ssl, json, b; print(b.g(), sys.prefix == sys.argv[1], sys.version_info[:2] == (3, 11))", dir)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8"}
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != "beta-g:alpha-f True True\n" {
			t.Errorf("%s: %v: %s", dir, err, out)
		}
		cmd = exec.Command(filepath.Join(dir, "bin", "alpha-cli"), "c")
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		if out, err := cmd.CombinedOutput(); err != nil || string(out) != "alpha-cli c\n" {
			t.Errorf("%s: console script: %v: %s", dir, err, out)
		}
		checkPyc(t, filepath.Join(dir, "lib", "python3.11", "__pycache__", "os.cpython-311.pyc"))
		checkPyc(t, filepath.Join(dir, "lib", "python3.11", "site-packages", "a", "__pycache__", "__init__.cpython-311.pyc"))
		if target, _ := os.Readlink(filepath.Join(dir, "bin", "python")); target != "python3.11" {
			t.Errorf("bin/python -> %q, want python3.11 (inside the archive)", target)
		}
	}
	again, _ := f.build(t, &Config{Copies: true})
	b1, _ := os.ReadFile(archive)
	b2, _ := os.ReadFile(again)
	if !bytes.Equal(b1, b2) {
		t.Errorf("two copies builds differ")
	}
}

func TestCopiesNeedsCondaPython(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var log bytes.Buffer
	_, err := New().Build(context.Background(), f.request(t, &Config{Copies: true}, &log))
	if err == nil || !strings.Contains(err.Error(), "has no python package") {
		t.Errorf("Build = %v", err)
	}
}
