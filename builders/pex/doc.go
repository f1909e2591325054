// Package pex builds the "pex" target kind: one executable zip that holds an
// environment's wheels and, optionally, the project's own sources, for
// `spark-submit --files job.pex` with PYSPARK_PYTHON=./job.pex.
//
//	target "pex" "job" {
//	  environment    = environment.etl
//	  entry_point    = "pkg.mod:main"      # optional
//	  python_version = ">=3.10,<3.13"      # optional interpreter constraint
//	  sources        = "src"               # optional, becomes the zip root
//	  shebang        = "#!/usr/bin/env python3"
//	  output         = "job.pex"
//	}
//
// sparkenv writes the PEX itself rather than running the pex tool: the file
// is a shebang line followed by a deterministic zip (sorted members, fixed
// times, normalized modes) holding
//
//	__main__.py              the bootstrap (bootstrap.py in this package)
//	PEX-INFO                 JSON: requirements, distributions, constraints, hashes
//	.deps/<wheel file>/...   each wheel, installed: libraries at the root,
//	                         scripts and data under .prefix/ (PEX's layout)
//	<sources>/...            the user's code, when sources is set
//
// At run time the bootstrap checks the interpreter against the constraints
// before anything else, unpacks everything once into
// $PEX_ROOT/sparkenv/<pex_hash> (default ~/.pex, else a per-user directory
// under the system temp dir), atomically so that many executors starting
// at once are safe, and then behaves as the python command: Spark's workers
// start it as `./job.pex -m pyspark.daemon`.
//
// The command line: with no entry point, the PEX is a python command
// (-c CODE, -m MODULE, a script, "-" or piped stdin, an interactive
// prompt; the options -u -B -s -W -X take effect, -E -I -S -O -b -d -q -v
// -x are accepted and change nothing once the interpreter runs). With an
// entry point, the arguments go to it, unless the command line is a python
// one naming code to run (-c or -m, possibly after options), which Spark's
// worker start needs; PEX_INTERPRETER=1 forces the python command. The
// interpreter's own site-packages are left off sys.path unless
// PEX_INHERIT_PATH is "fallback" (after the PEX's) or "prefer" (before).
//
// Only the environment's pip wheels go into the PEX. Its conda packages do
// not: a PEX holds no interpreter and no native libraries outside wheels.
// When no python_version is given, the constraint defaults to the
// major.minor of the environment's conda python, or else to the one CPython
// version its version-specific wheels share (Spark refuses workers whose
// major.minor differs from the driver's, and a native wheel imports only on
// its own). A python_version that allows versions such wheels do not
// support is reported in the build log.
//
// The builder must never write outside req.OutDir and req.TempDir, never
// read files other than the cached wheels and the sources directory, and
// never let the host (time, user, paths) into the bytes of the PEX.
package pex
