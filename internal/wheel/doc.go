// Package wheel installs Python wheels (the binary distribution format of
// PEP 427) into a staging tree without running Python: it checks every file
// against the wheel's RECORD, places the files by install scheme, rewrites
// script shebangs for the interpreter of the target machine, writes entry
// point launchers and the PEP 376 metadata (INSTALLER, RECORD, REQUESTED).
//
// It must never write outside the scheme's directories, never install a
// file whose hash differs from RECORD, and never depend on the time or the
// order of the archive: the same wheel and scheme give the same bytes.
package wheel
