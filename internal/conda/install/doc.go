// Package install lays out a complete conda environment from extracted
// packages: it links or copies every file a package lists, patches prefix
// placeholders for a target prefix (which may differ from the directory being
// written, so an image mounted at /opt/conda can be built anywhere), maps
// noarch: python packages into the interpreter's site-packages, writes entry
// point scripts, and records conda-meta (CEP 32) so that conda, mamba and pixi
// recognise the result as an environment.
//
// The result is deterministic: installing the same extracted packages twice
// gives byte-identical trees with the same modes, symlinks and mtimes. Install
// writes into a temporary directory beside the destination and renames it
// into place at the end, so a failed install leaves nothing behind.
//
// # Mtimes
//
// Files copied or hardlinked unchanged keep the mtime of the file in the
// extracted package, as conda does: the .pyc files shipped in packages record
// their source's mtime, and a different one would make every one of them
// stale. Files whose bytes differ from the package (patched files, entry
// points, conda-meta), symlinks and every directory get one fixed time, the
// newest package timestamp, which is newer than anything packaged and the
// same on every run. File modes are normalised to 0755 or 0644; a hardlink is made only to a
// packaged file that already has its normalised mode.
//
// # Shebangs
//
// After patching, a shebang longer than the kernel's 127 bytes, or with a
// space in the interpreter path, is rewritten. A python interpreter gets a
// /bin/sh polyglot:
//
//	#!/bin/sh
//	'''exec' "<prefix>/bin/pythonX.Y" "$0" "$@" #'''
//
// It keeps the exact interpreter of the environment and so does not depend on
// PATH, which on Spark executors rarely holds the environment's bin. Any other
// interpreter gets `#!/usr/bin/env <name> <options>`, because the polyglot
// only works for a language that reads its second line as a string.
//
// # Not done
//
// No .pyc compilation and no link scripts: neither is reproducible without
// running code from the packages. Link scripts are listed in the report so
// that callers can warn. No fsync per file: the tree is an intermediate
// product renamed into place once; only the rename is synced, and durability
// of the files is the business of whoever stores the tree.
//
// # Layout
//
// Layout plans the same tree without writing it: every path with its type,
// mode and link target, and for each file the host file holding its bytes,
// which is the file in the extracted package when it is installed unchanged.
// Only what differs from the packages (patched files, entry points,
// conda-meta, files whose packaged mode is not 0755 or 0644) is written, to
// a separate directory. Tools that read a list of files (mksquashfs with a
// pseudo file) pack an environment from that without a copy being made.
//
// With Options.LayoutCache, Layout keeps each package's part of the tree
// for the target prefix (every path with its mode, hashes and link target,
// and the files it had to write) and each conda-meta record, and a later
// Layout reads those instead of paths.json and the package's files. The
// tree is the same either way; only what is read differs.
//
// This package must never run code from a package, write outside the
// destination (links that leave the prefix are refused and nothing is written
// through a link), or modify the extracted package directories it reads.
package install
