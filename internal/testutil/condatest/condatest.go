// Package condatest gives tests a real, locked conda environment: the
// quickstart channel (a python made from this machine's CPython, noarch
// libraries, placeholder packages) written once per test binary and solved
// once per set of specs, plus the input a builder receives for it. Call
// Cleanup from TestMain.
package condatest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/internal/conda/engine"
	"github.com/sparkenv/sparkenv/internal/conda/fixture"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/testutil"
)

var state struct {
	mu      sync.Mutex
	dir     string
	channel string
	err     error
	solved  map[string]*lock.Environment
}

// Channel returns the quickstart channel's directory, written on first use.
func Channel(t testing.TB) string {
	t.Helper()
	testutil.Python(t, "3.11")
	testutil.Tool(t, "gcc")
	state.mu.Lock()
	defer state.mu.Unlock()
	if state.dir == "" && state.err == nil {
		state.dir, state.err = os.MkdirTemp("", "sparkenv-condatest-")
		if state.err == nil {
			state.channel = filepath.Join(state.dir, "channel")
			state.err = fixture.QuickstartChannel(context.Background(), state.channel)
		}
	}
	if state.err != nil {
		t.Fatal(state.err)
	}
	return state.channel
}

// PkgsDir is the package cache the solved environments were fetched into.
func PkgsDir(t testing.TB) string {
	Channel(t)
	return filepath.Join(state.dir, "pkgs")
}

// Locked solves specs against the quickstart channel (once per spec set)
// and returns the environment as an environment node's artifact holds it,
// with the given name and prefix.
func Locked(t testing.TB, name, prefix string, specs ...string) *lock.Resolved {
	t.Helper()
	ch := Channel(t)
	key := strings.Join(specs, "\x00")
	state.mu.Lock()
	defer state.mu.Unlock()
	env := state.solved[key]
	if env == nil {
		var err error
		env, err = (&engine.Engine{PkgsDir: filepath.Join(state.dir, "pkgs")}).Solve(context.Background(),
			engine.SolveRequest{Platform: "linux-64", Channels: []string{ch}, Specs: specs})
		if err != nil {
			t.Fatal(err)
		}
		if state.solved == nil {
			state.solved = map[string]*lock.Environment{}
		}
		state.solved[key] = env
	}
	return &lock.Resolved{Name: name, Prefix: prefix, Environment: env}
}

// Input writes res as an environment artifact and returns the input a
// builder receives for it.
func Input(t testing.TB, res *lock.Resolved) builders.Input {
	t.Helper()
	dir := t.TempDir()
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, lock.ResolvedFileName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return builders.Input{Address: "environment." + res.Name, Kind: "environment", Name: res.Name, Dir: dir}
}

// Cleanup removes the channel and the package cache.
func Cleanup() {
	state.mu.Lock()
	defer state.mu.Unlock()
	if state.dir != "" {
		os.RemoveAll(state.dir)
	}
}
