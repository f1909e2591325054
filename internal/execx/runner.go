// Package execx runs external processes for builders: an explicit
// environment, the working directory, and output captured into a log, so
// that no builder reads the caller's environment by accident and tests can
// record every argv.
package execx

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
)

// Runner starts processes. The zero value inherits nothing: Env is the whole
// environment of the child.
type Runner struct {
	Env    []string                        // KEY=VALUE; the whole environment of the child
	Log    io.Writer                       // receives stdout and stderr; may be nil
	Record func(dir string, argv []string) // called before each start, for tests; may be nil
}

// Cmd describes one process.
type Cmd struct {
	Dir    string
	Argv   []string
	Env    []string // added to Runner.Env
	Stdin  io.Reader
	Stdout io.Writer // when set, stdout goes here instead of the log
}

// Error is returned when a process fails; it carries the tail of its output.
type Error struct {
	Argv []string
	Err  error
	Tail string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %v", strings.Join(e.Argv, " "), e.Err)
	if e.Tail != "" {
		msg += "\n" + e.Tail
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Run starts c and waits for it.
func (r *Runner) Run(ctx context.Context, c Cmd) error {
	if len(c.Argv) == 0 {
		return fmt.Errorf("execx: empty argv")
	}
	if r.Record != nil {
		r.Record(c.Dir, append([]string(nil), c.Argv...))
	}
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = append(append([]string{}, r.Env...), c.Env...)
	cmd.Stdin = c.Stdin
	tail := &tailWriter{max: 4096}
	var out io.Writer = tail
	if r.Log != nil {
		out = io.MultiWriter(r.Log, tail)
	}
	cmd.Stderr = out
	if c.Stdout != nil {
		cmd.Stdout = c.Stdout
	} else {
		cmd.Stdout = out
	}
	if err := cmd.Run(); err != nil {
		return &Error{Argv: c.Argv, Err: err, Tail: strings.TrimSpace(tail.String())}
	}
	return nil
}

// Output runs c and returns its stdout.
func (r *Runner) Output(ctx context.Context, c Cmd) ([]byte, error) {
	var b bytes.Buffer
	c.Stdout = &b
	err := r.Run(ctx, c)
	return b.Bytes(), err
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
