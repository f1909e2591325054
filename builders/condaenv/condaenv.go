// Package condaenv is what every target built from an environment shares:
// finding the environment among the build's inputs, laying it out with the
// conda engine for a target prefix, and compiling its .pyc files so that an
// image or archive with normalized timestamps does not import slowly. It is
// a library for builders, not a target kind.
package condaenv

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/internal/conda/engine"
	"github.com/sparkenv/sparkenv/internal/conda/install"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/execx"
	"github.com/sparkenv/sparkenv/internal/s3read"
)

// Resolved returns the locked environment at address addr
// ("environment.ml") among the request's inputs.
func Resolved(req *builders.Request, addr string) (*lock.Resolved, error) {
	if addr == "" {
		return nil, fmt.Errorf("no environment given: set environment = environment.<name>")
	}
	for _, in := range req.Inputs {
		if in.Address != addr {
			continue
		}
		b, err := os.ReadFile(filepath.Join(in.Dir, lock.ResolvedFileName))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", addr, err)
		}
		var r lock.Resolved
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", addr, err)
		}
		if r.Environment == nil {
			return nil, fmt.Errorf("%s: the artifact holds no locked environment", addr)
		}
		return &r, nil
	}
	return nil, fmt.Errorf("%s is not an input of this build (is it declared?)", addr)
}

// Engine is the conda engine configured from a build request.
func Engine(req *builders.Request) *engine.Engine {
	return &engine.Engine{PkgsDir: req.PackageCacheDir, Offline: req.Offline, Jobs: req.Jobs, Log: req.Log, S3: &s3read.Client{}}
}

// Stage lays the environment out in dir (absent or empty), patched for
// targetPrefix.
func Stage(ctx context.Context, req *builders.Request, r *lock.Resolved, dir, targetPrefix string) (*install.Report, error) {
	return Engine(req).Install(ctx, r.Environment, dir, engine.InstallOptions{
		TargetPrefix: targetPrefix, AllowHardlinks: true, History: "sparkenv build " + req.Address,
	})
}

// Layout plans the environment for targetPrefix without copying the
// packages' files (see install.Layout); what has to be written goes below
// workDir.
func Layout(ctx context.Context, req *builders.Request, r *lock.Resolved, workDir, targetPrefix string) (*install.Tree, error) {
	return Engine(req).Layout(ctx, r.Environment, workDir, engine.InstallOptions{
		TargetPrefix: targetPrefix, AllowHardlinks: true, History: "sparkenv build " + req.Address,
	})
}

// PythonVersion is the major.minor of the environment's python, or "" when
// it has none.
func PythonVersion(env *lock.Environment) string {
	for _, r := range env.Packages {
		if r.Name == "python" {
			parts := strings.SplitN(r.Version, ".", 3)
			if len(parts) >= 2 {
				return parts[0] + "." + parts[1]
			}
		}
	}
	return ""
}

// HostRuns reports whether programs built for the conda platform run on
// this machine.
func HostRuns(platform string) bool {
	host := map[string]string{"linux/amd64": "linux-64", "linux/arm64": "linux-aarch64", "darwin/amd64": "osx-64",
		"darwin/arm64": "osx-arm64", "linux/ppc64le": "linux-ppc64le", "linux/s390x": "linux-s390x"}[runtime.GOOS+"/"+runtime.GOARCH]
	return host == platform
}

// CompilePyc compiles every .py file of the staged environment into
// unchecked-hash .pyc files with the environment's own interpreter. Such
// files stay valid whatever the timestamps of the image or archive, and
// their recorded source paths are those under targetPrefix. It returns
// false, doing nothing, when the environment has no python or the python
// cannot run here.
func CompilePyc(ctx context.Context, req *builders.Request, env *lock.Environment, stage, targetPrefix string) (bool, error) {
	xy := PythonVersion(env)
	if xy == "" || !HostRuns(env.Platform) {
		return false, nil
	}
	py := filepath.Join(stage, "bin", "python"+xy)
	if _, err := os.Stat(py); err != nil {
		return false, nil
	}
	lib := filepath.Join(stage, "lib", "python"+xy)
	jobs := req.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	// -s -S keep user and site packages out without -I/-E, which would
	// also ignore PYTHONHASHSEED: a fixed seed keeps the .pyc bytes the
	// same from one build to the next.
	childEnv := []string{"PYTHONHASHSEED=0"}
	for _, kv := range req.Runner.Env {
		if !strings.HasPrefix(kv, "PYTHON") {
			childEnv = append(childEnv, kv)
		}
	}
	r := &execx.Runner{Env: childEnv, Log: req.Log}
	// A file that does not compile (Python 2 code shipped by some package)
	// is reported in the log and left without a .pyc, as conda does.
	script := `import compileall, py_compile, re, sys
compileall.compile_dir(sys.argv[1], quiet=1, force=True, workers=int(sys.argv[4]),
    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    stripdir=sys.argv[2], prependdir=sys.argv[3],
    rx=re.compile(r"(^|/)(test|tests|idle_test)/|bad_coding|badsyntax"))
`
	err := r.Run(ctx, execx.Cmd{Argv: []string{py, "-s", "-S", "-c", script, lib, stage, targetPrefix, fmt.Sprint(jobs)}})
	if err != nil {
		return false, fmt.Errorf("compile .pyc with %s: %w", py, err)
	}
	return true, nil
}
