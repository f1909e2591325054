package venvpack

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/internal/execx"
)

// compileScript compiles a tree into unchecked-hash .pyc files: they stay
// valid whatever the archive's timestamps, so executors neither recompile
// nor import slowly. Recorded source paths are made relative to the
// environment (import fixes them up to where the sources really are).
const compileScript = `import compileall, py_compile, re, sys
ok = compileall.compile_dir(sys.argv[1], quiet=1, force=True, workers=int(sys.argv[3]),
    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH, stripdir=sys.argv[2],
    rx=re.compile(r"(^|/)(test|tests)/"))
`

// canCompile reports whether the interpreter of major.minor xy has what
// compileScript uses (stripdir is 3.9+).
func canCompile(xy string) bool {
	major, minor, ok := strings.Cut(xy, ".")
	m, err := strconv.Atoi(minor)
	return ok && major == "3" && err == nil && m >= 9
}

// compilePyc runs compileScript with py over dir. A file that does not
// compile (Python 2 code in some wheel) is reported in the log and left
// without a .pyc, as pip does.
func compilePyc(ctx context.Context, req *builders.Request, py, dir, stage string) error {
	jobs := req.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	r := &execx.Runner{Log: req.Log}
	if req.Runner != nil {
		r.Env = append(r.Env, req.Runner.Env...)
	} else {
		r.Env = os.Environ()
	}
	// A fixed hash seed keeps the marshalled sets of the .pyc files in one
	// order.
	r.Env = append(r.Env, "PYTHONHASHSEED=0", "PYTHONDONTWRITEBYTECODE=")
	// Not -I: it would ignore PYTHONHASHSEED. -s -S and empty PYTHONPATH
	// and PYTHONHOME isolate the run as well.
	r.Env = append(r.Env, "PYTHONPATH=", "PYTHONHOME=")
	err := r.Run(ctx, execx.Cmd{Argv: []string{py, "-s", "-S", "-c", compileScript, dir, stage, fmt.Sprint(jobs)}})
	if err != nil {
		return fmt.Errorf("compile .pyc with %s: %w", py, err)
	}
	return nil
}
