// Package venvpack builds the "venv_pack" target kind: a relocatable
// virtual environment for an interpreter that exists on the cluster nodes,
// packed as one archive for `spark-submit --archives env.tar.gz#environment`
// with PYSPARK_PYTHON=./environment/bin/python.
//
//	target "venv_pack" "etl" {
//	  environment    = environment.etl
//	  python         = "/opt/conda/bin/python3.11"   # the nodes' interpreter
//	  python_version = "3.11"
//	  copies         = false
//	  format         = "tar.gz"                      # or tar, tar.zst
//	  check_python   = true                          # default
//	  compile        = true                          # default
//	}
//
// sparkenv writes the environment itself instead of running `python -m
// venv`, so it can build for an interpreter that is not on this machine.
// The archive's root holds
//
//	pyvenv.cfg                        home = dirname(python), no system site-packages
//	bin/python, bin/pythonX, bin/pythonX.Y   symbolic links to python
//	bin/activate, bin/activate.fish   find the environment from their own path
//	bin/<console scripts>             #!/bin/sh trampolines to the python beside them
//	lib/pythonX.Y/site-packages/      the environment's wheels, installed
//	lib64 -> lib
//	README.txt                        what the archive needs on the nodes
//
// The classic failure of such archives is an interpreter link that points
// to a path that exists where the archive was built but not on the nodes:
// it works in local mode and fails on every executor. So the python path is
// written into README.txt, and with check_python (the default) the build
// warns in its log when the path is absent here and fails when the
// interpreter there is not python_version.
//
// With copies = true the interpreter is taken from the environment's conda
// python instead (the environment must contain python): bin/pythonX.Y, every
// shared library at the top of lib/ (libpython and what the standard
// library's extension modules load), and lib/pythonX.Y without its
// site-packages are copied in; there is no pyvenv.cfg then, because the
// tree is a complete, relocatable Python prefix of its own.
//
// The archive's times are fixed, so timestamp-checked .pyc files would all
// be stale on the nodes. When the interpreter runs here (linked: python
// exists and is python_version; copies: same platform) and compile is not
// false, the installed files (and, with copies, the standard library) are
// compiled into unchecked-hash .pyc files with a fixed hash seed, which
// keeps the archive reproducible for one interpreter version; the
// interpreter's exact version is reported through ToolVersions so that it
// is part of the cache key.
//
// Only the environment's pip wheels are installed; its other conda
// packages are not part of a venv. The builder must never write outside
// req.OutDir and req.TempDir and never let the host (time, user, build
// paths) into the archive's bytes.
package venvpack
