// Package archive writes deterministic archives (zip, tar, tar.gz, tar.zst)
// from a list of entries, and collects such a list from a directory tree.
//
// Equal entries and options give byte-identical archives on every machine
// and with any degree of parallelism: entries are sorted, times are fixed
// (Options.MTime, 1980-01-01 by default so zip can hold it), owners are
// uid/gid 0 with no names, modes are normalized to 0644/0755, and the
// compressors are configured so that their output does not depend on the
// number of goroutines.
//
// The writers use the standard library's archive/tar and archive/zip rather
// than github.com/mholt/archives: the latter derives tar headers from
// fs.FileInfo itself (ignoring a prepared header), which makes owners and
// times hard to pin, while the standard writers take the exact header given.
// Compression comes from github.com/klauspost/pgzip (gzip in parallel
// blocks), github.com/klauspost/compress/zstd and .../flate (zip members).
//
// This package must never read anything but the entries' source files, never
// write anything but the archive (atomically, through internal/fsutil), and
// never let the host leak into the bytes (owner names, times, umask).
package archive
