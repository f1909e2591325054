// Package cli is sparkenv's command line: it parses flags, runs the planner
// and renders diagnostics, progress and results. Main never calls os.Exit,
// so commands are tested in-process.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/spec"
)

// Version is the sparkenv version.
var Version = "0.1.0"

// exitError carries an exit code through cobra. A nil message means the
// command already printed what went wrong.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func exitCode(code int) error { return &exitError{code: code} }

// app holds what every command shares.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	environ        []string

	dir      string
	files    []string
	vars     []string
	varFiles []string
}

// Main runs sparkenv with args and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, environ: os.Environ()}
	// SPARKENV_CPUPROFILE=FILE writes a CPU profile of the run, for finding
	// where a slow build spends its time.
	if p := os.Getenv("SPARKENV_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			}
		}
	}
	root := a.rootCommand()
	root.SetArgs(singleDashLongFlags(args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintf(stderr, "Error: %s\n", ee.msg)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "Error: %s\n", err)
	return 1
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "sparkenv",
		Short: "Build, publish and wire Python environments for Spark clusters",
		Long: `sparkenv builds the Python environments of Spark jobs from env.hcl files:
conda environments solved and installed natively, channel mirrors, squashfs
images, conda-pack/venv-pack style archives, PEX files and py-files zips,
published to S3 or a folder and wired into spark-submit or Spark Connect.
Rebuilds redo only what changed.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&a.dir, "chdir", "C", ".", "run as if started in `DIR`")
	pf.StringArrayVarP(&a.files, "file", "f", nil, "configuration `FILE` (repeatable; default env.hcl)")
	pf.StringArrayVar(&a.vars, "var", nil, "set a variable: `NAME=VALUE` (repeatable)")
	pf.StringArrayVar(&a.varFiles, "var-file", nil, "read variables from an HCL `FILE` (repeatable)")
	root.AddCommand(
		a.validateCommand(),
		a.planCommand(),
		a.buildCommand(),
		a.explainCommand(),
		a.graphCommand(),
		a.fmtCommand(),
		a.cleanCommand(),
		a.cacheCommand(),
		a.versionCommand(),
	)
	for _, c := range extraCommands {
		root.AddCommand(c(a))
	}
	return root
}

// extraCommands are added by other files of this package (lock, install,
// spark-args...), so that each capability stays in its own file.
var extraCommands []func(*app) *cobra.Command

// workDir is the absolute directory sparkenv runs in.
func (a *app) workDir() (string, error) {
	d, err := filepath.Abs(a.dir)
	if err != nil {
		return "", err
	}
	info, err := os.Stat(d)
	if err != nil {
		return "", fmt.Errorf("-C %s: %w", a.dir, err)
	}
	if !info.IsDir() {
		return "", fmt.Errorf("-C %s: not a directory", a.dir)
	}
	return d, nil
}

// load reads the configuration and renders its diagnostics. It returns nil
// when there were errors (already printed).
func (a *app) load(jsonOut bool) (*spec.Config, hcl.Diagnostics, error) {
	dir, err := a.workDir()
	if err != nil {
		return nil, nil, err
	}
	vars := map[string]string{}
	for _, kv := range a.vars {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, nil, fmt.Errorf("-var %q: want NAME=VALUE", kv)
		}
		vars[k] = v
	}
	opts := spec.LoadOptions{
		Dir: dir, Files: a.files, Vars: vars, VarFiles: a.varFiles,
		Environ: a.environ, Version: Version, ValidateSpec: validateMatchSpec,
	}
	cfg, diags := spec.Load(opts)
	return cfg, diags, nil
}

// loadOrReport loads the configuration; on errors it prints them (as text,
// or as JSON when jsonOut) and returns an exit error.
func (a *app) loadOrReport(jsonOut bool) (*spec.Config, error) {
	cfg, diags, err := a.load(jsonOut)
	if err != nil {
		return nil, err
	}
	if diags.HasErrors() {
		a.reportDiagnostics(diags, cfg, jsonOut)
		return nil, exitCode(1)
	}
	if len(diags) > 0 && !jsonOut {
		renderDiagnostics(a.stderr, diags, cfg.Files, cfg.Dir)
	}
	return cfg, nil
}

func (a *app) reportDiagnostics(diags hcl.Diagnostics, cfg *spec.Config, jsonOut bool) {
	var files map[string]*hcl.File
	base := ""
	if cfg != nil {
		files, base = cfg.Files, cfg.Dir
	}
	if jsonOut {
		writeJSON(a.stdout, diagnosticsJSON(diags, base))
		return
	}
	renderDiagnostics(a.stderr, diags, files, base)
}

// readLock reads the lock beside the configuration; a missing lock is nil.
func readLock(dir string) (*lock.File, error) {
	lf, err := lock.Read(filepath.Join(dir, lock.FileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return lf, err
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the sparkenv version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(a.stdout, "sparkenv %s %s/%s\n", Version, runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

// singleDashLongFlags accepts the Terraform spelling of long flags
// (-var, -var-file, -check, -json, -detailed-exitcode) beside the GNU one.
func singleDashLongFlags(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, _, _ := strings.Cut(a, "=")
		switch name {
		case "-var", "-var-file", "-check", "-json", "-detailed-exitcode":
			a = "-" + a
		}
		out = append(out, a)
	}
	return out
}
