package pip

import (
	"fmt"
	"strings"

	"github.com/sparkenv/sparkenv/internal/conda/lock"
)

// TargetFor derives the pip target of a solved conda environment: its
// platform, the __glibc and __osx virtual packages (defaults as the conda
// engine's: glibc 2.17, macOS 11.0), the major.minor of its python record,
// and the interpreter and ABI tags from its python_abi record's build
// string ("4_cp311" gives cp311, "4_cp313t" cp313t, "6_pypy39_pp73" a
// PyPy target), or CPython's when there is none.
func TargetFor(env *lock.Environment) (Target, error) {
	t := Target{Platform: env.Platform, Glibc: env.VirtualPackages["__glibc"], MacOS: env.VirtualPackages["__osx"]}
	for _, r := range env.Packages {
		switch r.Name {
		case "python":
			parts := strings.SplitN(r.Version, ".", 3)
			if len(parts) >= 2 {
				t.PythonVersion = parts[0] + "." + parts[1]
			}
		case "python_abi":
			if i := strings.Index(r.Build, "_"); i >= 0 {
				abi := r.Build[i+1:]
				if strings.HasPrefix(abi, "pypy") {
					t.Implementation, t.ABI = "pp", abi
				} else if strings.HasPrefix(abi, "cp") {
					t.Implementation, t.ABI = "cp", abi
				}
			}
		}
	}
	if t.PythonVersion == "" {
		return t, fmt.Errorf("environment for %s has no python package: pip requirements need one (add python to its specs)", env.Platform)
	}
	return t.normalized()
}
