// Package oracle drives the @conda-org/rattler npm package (rattler compiled
// to WebAssembly, run by node) as an independent conda implementation that
// sparkenv's version, matchspec, solver and mirror tests compare against.
//
// One node process serves a whole batch of requests over JSON lines, so a
// test pays node's start-up once. The package is for tests and benchmarks
// only: production code must never depend on node or rattler.
package oracle

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/sparkenv/sparkenv/internal/testutil"
)

// Script is the path of the node bridge script.
func Script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "oracle", "oracle.cjs")
}

// Oracle is a running node process with rattler loaded. Its methods are
// safe for concurrent use; requests are served one batch at a time.
type Oracle struct {
	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr *tailBuffer
}

// Start starts node with the bridge script; rattlerDir is the directory of
// the npm package @conda-org/rattler.
func Start(ctx context.Context, node, rattlerDir string) (*Oracle, error) {
	cmd := exec.CommandContext(ctx, node, Script(), rattlerDir)
	cmd.Env = append(os.Environ(), "NODE_NO_WARNINGS=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("oracle: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("oracle: %w", err)
	}
	o := &Oracle{cmd: cmd, stdin: stdin, stdout: bufio.NewReaderSize(stdout, 1<<20), stderr: &tailBuffer{}}
	cmd.Stderr = o.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("oracle: start node %s: %w", Script(), err)
	}
	return o, nil
}

// ForTest starts an oracle for a test (skipping it when node or rattler is
// absent) and stops it when the test ends.
func ForTest(t testing.TB) *Oracle {
	t.Helper()
	node := testutil.Tool(t, "node")
	dir := testutil.Rattler(t)
	o, err := Start(context.Background(), node, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Close() })
	return o
}

// Close stops the node process.
func (o *Oracle) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	_ = o.stdin.Close()
	err := o.cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("oracle: node exited: %w: %s", err, o.stderr.String())
	}
	return err
}

// batch sends all requests and decodes one answer per request into out[i].
func (o *Oracle) batch(reqs []any, decode func(i int, line []byte) error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	werr := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(o.stdin, 1<<20)
		enc := json.NewEncoder(w)
		for _, r := range reqs {
			if err := enc.Encode(r); err != nil {
				werr <- err
				return
			}
		}
		werr <- w.Flush()
	}()
	for i := range reqs {
		line, err := o.stdout.ReadBytes('\n')
		if err != nil {
			return fmt.Errorf("oracle: reading answer %d of %d: %w (node stderr: %s)", i+1, len(reqs), err, o.stderr.String())
		}
		if err := decode(i, line); err != nil {
			return fmt.Errorf("oracle: answer %d %q: %w", i+1, line, err)
		}
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("oracle: sending requests: %w", err)
	}
	return nil
}

type answer struct {
	R       json.RawMessage `json:"r"`
	Canon   string          `json:"canon"`
	Err     *string         `json:"err"`
	Records []SolvedRecord  `json:"records"`
}

// CompareResult is rattler's ordering of two versions: -1, 0 or 1, or the
// error rattler gave for either version.
type CompareResult struct {
	Order int
	Err   string
}

// Compare asks rattler to order each pair of versions.
func (o *Oracle) Compare(pairs [][2]string) ([]CompareResult, error) {
	reqs := make([]any, len(pairs))
	for i, p := range pairs {
		reqs[i] = map[string]string{"op": "compare", "a": p[0], "b": p[1]}
	}
	out := make([]CompareResult, len(pairs))
	err := o.batch(reqs, func(i int, line []byte) error {
		var a answer
		if err := json.Unmarshal(line, &a); err != nil {
			return err
		}
		if a.Err != nil {
			out[i].Err = *a.Err
			return nil
		}
		var n int
		if err := json.Unmarshal(a.R, &n); err != nil {
			return err
		}
		out[i].Order = n
		return nil
	})
	return out, err
}

// MatchRequest asks whether a version satisfies a version spec.
type MatchRequest struct {
	Spec    string
	Version string
	Lenient bool // parse the spec in rattler's lenient mode instead of strict
}

// MatchResult is rattler's answer: whether it matched, how rattler prints
// the spec, or the error it gave.
type MatchResult struct {
	Match     bool
	Canonical string
	Err       string
}

// Matches asks rattler to evaluate each request.
func (o *Oracle) Matches(reqs []MatchRequest) ([]MatchResult, error) {
	raw := make([]any, len(reqs))
	for i, r := range reqs {
		mode := "strict"
		if r.Lenient {
			mode = "lenient"
		}
		raw[i] = map[string]string{"op": "matches", "spec": r.Spec, "version": r.Version, "mode": mode}
	}
	out := make([]MatchResult, len(reqs))
	err := o.batch(raw, func(i int, line []byte) error {
		var a answer
		if err := json.Unmarshal(line, &a); err != nil {
			return err
		}
		if a.Err != nil {
			out[i].Err = *a.Err
			return nil
		}
		out[i].Canonical = a.Canon
		return json.Unmarshal(a.R, &out[i].Match)
	})
	return out, err
}

// SolvedRecord is one package of a rattler solution.
type SolvedRecord struct {
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	Build       string   `json:"build"`
	BuildNumber int64    `json:"build_number"`
	Subdir      string   `json:"subdir"`
	URL         string   `json:"url"`
	FileName    string   `json:"filename"`
	Depends     []string `json:"depends"`
}

// SolveError is a request rattler could not solve (or refused); Message is
// rattler's own text ("Cannot solve the request because of: …").
type SolveError struct{ Message string }

func (e *SolveError) Error() string { return "rattler: " + e.Message }

// SimpleSolve runs rattler's solver on channels served over http (rattler
// in node cannot read file:// channels). An unsatisfiable request returns
// a *SolveError.
func (o *Oracle) SimpleSolve(ctx context.Context, specs, channelURLs, platforms []string) ([]SolvedRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req := map[string]any{"op": "solve", "specs": specs, "channels": channelURLs, "platforms": platforms}
	var recs []SolvedRecord
	var serr error
	done := make(chan error, 1)
	go func() {
		done <- o.batch([]any{req}, func(_ int, line []byte) error {
			var a answer
			if err := json.Unmarshal(line, &a); err != nil {
				return err
			}
			if a.Err != nil {
				serr = &SolveError{Message: *a.Err}
				return nil
			}
			recs = a.Records
			if recs == nil {
				recs = []SolvedRecord{}
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			return nil, err
		}
		return recs, serr
	case <-ctx.Done():
		_ = o.cmd.Process.Kill()
		return nil, context.Cause(ctx)
	}
}

// tailBuffer keeps the last few KiB of node's stderr for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 8192 {
		b.buf = b.buf[len(b.buf)-8192:]
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
