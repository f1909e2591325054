package install

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// EntryType says what an Entry is.
type EntryType int

const (
	EntryDir EntryType = iota
	EntryFile
	EntrySymlink
)

// Entry is one path of a laid-out environment.
type Entry struct {
	Path string    // prefix-relative, slash-separated
	Type EntryType //
	// Mode holds the permission bits: 0755 or 0644 for files, 0755 for
	// directories.
	Mode fs.FileMode
	// Source is the host file holding a file's bytes: the file in the
	// extracted package when it is installed unchanged, or the file Layout
	// wrote under its output directory.
	Source string
	// Target is a symlink's target.
	Target string
	// Package is the index in the install list of the package that
	// installs the path, or -1 for what the installer itself writes
	// (conda-meta, directories no package lists).
	Package int
	// SHA256 is the hex digest of a file's bytes as installed.
	SHA256 string
}

// Tree is an environment laid out without being copied: every path it
// has, and where the bytes of each file are.
type Tree struct {
	Entries []Entry // sorted by Path; parents before children
	Report  Report
}

// Layout plans the environment made of pkgs for opts.TargetPrefix the way
// Install lays it out, without copying the package files: a file installed
// unchanged is named where it is in the extracted package. What has to be
// written (patched files, entry points, conda-meta, files whose packaged
// mode is not 0755 or 0644) goes below genDir, which must be empty or
// absent. Reading every Source of the returned tree gives exactly the
// files Install would have written; the directories, modes and symlinks
// are those of the entries.
func Layout(ctx context.Context, genDir string, pkgs []Package, opts Options) (*Tree, error) {
	dest, err := filepath.Abs(genDir)
	if err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	if err := checkEmpty(dest); err != nil {
		return nil, err
	}
	if opts.TargetPrefix == "" {
		return nil, fmt.Errorf("install: a layout needs the target prefix")
	}
	in, winners, err := prepare(ctx, pkgs, opts, opts.TargetPrefix, true)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	in.tmp = dest
	if err := in.write(ctx, winners); err != nil {
		return nil, err
	}
	if err := in.writeMeta(); err != nil {
		return nil, err
	}
	in.storeRecords(in.keys)
	t := &Tree{Report: in.report}
	// The entries come in runs that are sorted, or nearly: the
	// directories, each package's paths, conda-meta. Sorting each run and
	// merging them is quicker than sorting all at once.
	entries := make([]Entry, 0, len(in.dirs)+len(winners)+len(in.pkgs)+3)
	var runs []int // where each run starts
	for _, d := range in.dirs {
		entries = append(entries, Entry{Path: d, Type: EntryDir, Mode: 0o755, Package: -1})
	}
	entries = append(entries, Entry{Path: "conda-meta", Type: EntryDir, Mode: 0o755, Package: -1})
	for i, it := range winners {
		if i == 0 || it.pkg != winners[i-1].pkg {
			runs = append(runs, len(entries))
		}
		e := Entry{Path: it.phys, Package: it.pkg}
		switch it.kind {
		case kindSymlink:
			e.Type, e.Mode, e.Target = EntrySymlink, 0o777, it.target
		default:
			e.Type, e.Mode, e.Source, e.SHA256 = EntryFile, it.mode, it.source, it.sha256InPrefix
		}
		entries = append(entries, e)
	}
	runs = append(runs, len(entries))
	entries = append(entries, Entry{Path: "conda-meta/history", Type: EntryFile, Mode: 0o644,
		Source: filepath.Join(dest, "conda-meta", "history"), Package: -1})
	for _, ps := range in.pkgs {
		src := ps.meta
		if src == "" {
			src = filepath.Join(dest, "conda-meta", ps.dist+".json")
		}
		entries = append(entries, Entry{Path: "conda-meta/" + ps.dist + ".json", Type: EntryFile, Mode: 0o644,
			Source: src, Package: -1})
	}
	t.Entries = sortRuns(entries, append([]int{0}, runs...))
	return t, nil
}

func byPath(a, b Entry) int { return strings.Compare(a.Path, b.Path) }

// sortRuns sorts entries by path, given where runs start (the first at 0):
// each run is sorted unless it is already, then runs are merged two by
// two. It may reorder entries in place and returns the sorted slice.
func sortRuns(entries []Entry, starts []int) []Entry {
	bounds := append(slices.Clone(starts), len(entries))
	for i := 0; i+1 < len(bounds); i++ {
		if run := entries[bounds[i]:bounds[i+1]]; !slices.IsSortedFunc(run, byPath) {
			slices.SortFunc(run, byPath)
		}
	}
	buf := make([]Entry, len(entries))
	for len(bounds) > 2 {
		next := []int{0}
		for i := 0; i+1 < len(bounds); i += 2 {
			lo, mid := bounds[i], bounds[i+1]
			hi := mid
			if i+2 < len(bounds) {
				hi = bounds[i+2]
			}
			a, b, out := entries[lo:mid], entries[mid:hi], buf[lo:lo]
			for len(a) > 0 && len(b) > 0 {
				if b[0].Path < a[0].Path {
					out, b = append(out, b[0]), b[1:]
				} else {
					out, a = append(out, a[0]), a[1:]
				}
			}
			out = append(append(out, a...), b...)
			next = append(next, hi)
		}
		entries, buf = buf, entries
		bounds = next
	}
	return entries
}

// Add puts entries into the tree: one at a path the tree already has
// replaces it, except that a directory over a directory changes nothing;
// of entries at the same path, the last one counts.
func (t *Tree) Add(entries []Entry) {
	add := slices.Clone(entries)
	slices.SortStableFunc(add, byPath)
	old := t.Entries
	merged := make([]Entry, 0, len(old)+len(add))
	i := 0
	for j := 0; j < len(add); {
		for i < len(old) && old[i].Path < add[j].Path {
			merged = append(merged, old[i])
			i++
		}
		// The entries at this path, the tree's first, in the order given.
		var cur Entry
		have := false
		if i < len(old) && old[i].Path == add[j].Path {
			cur, have = old[i], true
			i++
		}
		for p := add[j].Path; j < len(add) && add[j].Path == p; j++ {
			if !have || cur.Type != EntryDir || add[j].Type != EntryDir {
				cur, have = add[j], true
			}
		}
		merged = append(merged, cur)
	}
	t.Entries = append(merged, old[i:]...)
}
