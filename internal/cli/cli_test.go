package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/internal/conda/fixture"
	"github.com/sparkenv/sparkenv/runtime/connect/connecttest"
)

func TestMain(m *testing.M) {
	defer func() {
		if channelDir != "" {
			os.RemoveAll(channelDir)
		}
	}()
	testscript.Main(m, map[string]func(){
		"sparkenv": func() {
			// A kind that exists only in these tests: it sleeps, so a
			// script can kill a build while it runs.
			testBuilders = append(testBuilders, slowBuilder{})
			os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
		},
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("SPARKENV_PKGS_DIR", filepath.Join(env.WorkDir, ".pkgs"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":      cmdExitcode,
			"sleep":         cmdSleep,
			"corrupt":       cmdCorrupt,
			"append":        cmdAppend,
			"replace":       cmdReplace,
			"nofile":        cmdNoFile,
			"samebytes":     cmdSameBytes,
			"freeport":      cmdFreePort,
			"mkchannel":     cmdMkChannel,
			"connectserver": cmdConnectServer,
			"httpget":       cmdHTTPGet,
		},
	})
}

// exitcode N cmd args... runs cmd and checks its exit code.
func cmdExitcode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: exitcode N command args...")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("%v", err)
	}
	if got != want {
		ts.Fatalf("exit code %d, want %d", got, want)
	}
}

func cmdSleep(ts *testscript.TestScript, neg bool, args []string) {
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	time.Sleep(d)
}

// corrupt DIR flips the first byte of every file below DIR (a store).
func cmdCorrupt(ts *testscript.TestScript, neg bool, args []string) {
	n := 0
	err := filepath.WalkDir(ts.MkAbs(args[0]), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		os.Chmod(p, 0o644)
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			return err
		}
		b[0] ^= 0xff
		n++
		return os.WriteFile(p, b, 0o644)
	})
	ts.Check(err)
	if n == 0 {
		ts.Fatalf("nothing to corrupt below %s", args[0])
	}
}

// append FILE TEXT appends a line.
func cmdAppend(ts *testscript.TestScript, neg bool, args []string) {
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_APPEND|os.O_WRONLY, 0)
	ts.Check(err)
	defer f.Close()
	_, err = fmt.Fprintln(f, strings.Join(args[1:], " "))
	ts.Check(err)
}

// replace FILE OLD NEW replaces text in a file.
func cmdReplace(ts *testscript.TestScript, neg bool, args []string) {
	p := ts.MkAbs(args[0])
	b, err := os.ReadFile(p)
	ts.Check(err)
	if !strings.Contains(string(b), args[1]) {
		ts.Fatalf("%s does not contain %q", args[0], args[1])
	}
	ts.Check(os.WriteFile(p, []byte(strings.Replace(string(b), args[1], args[2], 1)), 0o644))
}

// nofile GLOB fails when anything matches (leftover temp files).
func cmdNoFile(ts *testscript.TestScript, neg bool, args []string) {
	m, err := filepath.Glob(ts.MkAbs(args[0]))
	ts.Check(err)
	if len(m) > 0 {
		ts.Fatalf("unexpected files: %v", m)
	}
}

// samebytes A B compares two files byte for byte (cmp prints diffs of text).
func cmdSameBytes(ts *testscript.TestScript, neg bool, args []string) {
	a, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	b, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	if (string(a) == string(b)) == neg {
		ts.Fatalf("%s and %s: same=%v", args[0], args[1], !neg)
	}
}

// mkchannel DIR writes the quickstart conda channel (python from pyenv,
// noarch libraries, placeholder packages), once per test binary, copied.
func cmdMkChannel(ts *testscript.TestScript, neg bool, args []string) {
	channelOnce.Do(func() {
		channelDir, channelErr = os.MkdirTemp("", "sparkenv-channel-")
		if channelErr == nil {
			channelErr = fixture.QuickstartChannel(context.Background(), channelDir)
		}
	})
	if channelErr != nil {
		ts.Fatalf("mkchannel: %v", channelErr)
	}
	ts.Check(exec.Command("cp", "-r", channelDir, ts.MkAbs(args[0])).Run())
}

var (
	channelOnce sync.Once
	channelDir  string
	channelErr  error
)

// connectserver VAR 35|40 starts a Spark Connect artifact server of that
// version's behaviour and sets VAR to its sc:// URL.
func cmdConnectServer(ts *testscript.TestScript, neg bool, args []string) {
	mode := connecttest.Mode40
	if args[1] == "35" {
		mode = connecttest.Mode35
	}
	srv, err := connecttest.New(connecttest.Config{Mode: mode, Root: ts.MkAbs("connect-root")})
	ts.Check(err)
	ts.Defer(srv.Close)
	ts.Setenv(args[0], srv.URL())
}

// freeport VAR sets VAR to a free loopback port.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ts.Setenv(args[0], strconv.Itoa(port))
}

// httpget URL FILE fetches URL (retrying while the server starts) into FILE.
func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	var lastErr error
	for i := 0; i < 50; i++ {
		resp, err := http.Get(args[0])
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			ts.Check(err)
			if resp.StatusCode != 200 {
				ts.Fatalf("GET %s: %s", args[0], resp.Status)
			}
			ts.Check(os.WriteFile(ts.MkAbs(args[1]), b, 0o644))
			return
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	ts.Fatalf("GET %s: %v", args[0], lastErr)
}

// slowBuilder sleeps for `seconds`, writing its output in pieces.
type slowBuilder struct{}

type slowConfig struct {
	Seconds float64 `hcl:"seconds"`
	Content string  `hcl:"content"`
}

func (slowBuilder) Kind() string    { return "slow" }
func (slowBuilder) Version() string { return "1" }
func (slowBuilder) NewConfig() any  { return &slowConfig{} }
func (slowBuilder) Build(ctx context.Context, req *builders.Request) (*builders.Result, error) {
	c := req.Config.(*slowConfig)
	f, err := os.Create(filepath.Join(req.OutDir, "out.txt"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	steps := 10
	for i := 0; i < steps; i++ {
		fmt.Fprintf(f, "%s %d\n", c.Content, i)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(c.Seconds * float64(time.Second) / float64(steps))):
		}
	}
	return &builders.Result{}, nil
}
