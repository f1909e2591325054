package archive

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Entry is one member of an archive.
type Entry struct {
	// Path is slash-separated and relative, without a trailing slash.
	Path string
	// Mode is fs.ModeDir|0755 for directories, fs.ModeSymlink|0777 for
	// symbolic links, 0755 for executable files and 0644 for other files.
	// Writers normalize any other value to one of these.
	Mode fs.FileMode
	// Source is the file on disk holding a file's content. When it is
	// empty, Data is the content.
	Source string
	Data   []byte
	// Linkname is the target of a symbolic link, as written in the link.
	Linkname string
	// Size is the size of a file when collected; writers use the size of
	// the source at the time they read it.
	Size int64
}

// IsDir reports whether e is a directory.
func (e Entry) IsDir() bool { return e.Mode&fs.ModeDir != 0 }

// IsSymlink reports whether e is a symbolic link.
func (e Entry) IsSymlink() bool { return e.Mode&fs.ModeSymlink != 0 }

// CollectOptions selects what Collect takes from a tree.
type CollectOptions struct {
	// Include, when not empty, keeps only files (and symlinks) matching at
	// least one pattern; directories are kept when they hold something kept
	// or match themselves. Exclude drops matching paths, and a matching
	// directory drops everything below it. See Pattern for the syntax.
	Include, Exclude []string
	// SkipPycache drops __pycache__ directories and *.pyc / *.pyo files.
	SkipPycache bool
	// FollowSymlinks replaces each symbolic link by what it points to: a
	// file becomes a regular entry read through the link, a directory is
	// walked (filters apply to the paths below the link). Cycles are an
	// error. Without it, links are returned as symlink entries.
	FollowSymlinks bool
	// ConfineSymlinks refuses symbolic links whose target resolves outside
	// root, so that an archive of a source tree cannot pull in host files.
	ConfineSymlinks bool
}

// Collect walks root and returns its entries sorted by path, with a
// directory entry for every directory kept. Modes are normalized; devices,
// sockets and pipes are refused.
func Collect(root string, opts CollectOptions) ([]Entry, error) {
	inc, err := compileAll("include", opts.Include)
	if err != nil {
		return nil, err
	}
	exc, err := compileAll("exclude", opts.Exclude)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("collect %s: %w", root, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("collect %s: not a directory", root)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("collect %s: %w", root, err)
	}
	c := &collector{root: abs, realRoot: real, opts: opts, inc: inc, exc: exc}
	if _, err := c.walk(abs, "", map[string]bool{real: true}); err != nil {
		return nil, err
	}
	sort.Slice(c.out, func(i, j int) bool { return c.out[i].Path < c.out[j].Path })
	return c.out, nil
}

type collector struct {
	root, realRoot string
	opts           CollectOptions
	inc, exc       []Pattern
	out            []Entry
}

// walk adds the entries below dir (whose archive path is rel) and reports
// whether it added any. active holds the real paths of the directories
// being walked, to catch symlink cycles.
func (c *collector) walk(dir, rel string, active map[string]bool) (bool, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("collect %s: %w", dir, err)
	}
	kept := false
	for _, de := range des {
		name := de.Name()
		p := name
		if rel != "" {
			p = rel + "/" + name
		}
		full := filepath.Join(dir, name)
		if matchAny(c.exc, p) {
			continue
		}
		mode := de.Type()
		if mode&fs.ModeSymlink != 0 {
			ok, err := c.symlink(full, p, active)
			if err != nil {
				return false, err
			}
			kept = kept || ok
			continue
		}
		ok, err := c.add(full, p, mode, active)
		if err != nil {
			return false, err
		}
		kept = kept || ok
	}
	return kept, nil
}

// add handles a non-link path (or a followed link, with mode of its target).
func (c *collector) add(full, p string, mode fs.FileMode, active map[string]bool) (bool, error) {
	base := path.Base(p)
	switch {
	case mode.IsDir():
		if c.opts.SkipPycache && base == "__pycache__" {
			return false, nil
		}
		real, err := filepath.EvalSymlinks(full)
		if err != nil {
			return false, fmt.Errorf("collect %s: %w", full, err)
		}
		if active[real] {
			return false, fmt.Errorf("collect %s: symbolic link cycle through %s", c.root, p)
		}
		active[real] = true
		below, err := c.walk(full, p, active)
		delete(active, real)
		if err != nil {
			return false, err
		}
		if below || len(c.inc) == 0 || matchAny(c.inc, p) {
			c.out = append(c.out, Entry{Path: p, Mode: fs.ModeDir | 0o755})
			return true, nil
		}
		return false, nil
	case mode.IsRegular():
		if c.opts.SkipPycache && (strings.HasSuffix(base, ".pyc") || strings.HasSuffix(base, ".pyo")) {
			return false, nil
		}
		if len(c.inc) > 0 && !matchAny(c.inc, p) {
			return false, nil
		}
		info, err := os.Stat(full)
		if err != nil {
			return false, fmt.Errorf("collect %s: %w", full, err)
		}
		c.out = append(c.out, Entry{Path: p, Mode: fileMode(info.Mode()), Source: full, Size: info.Size()})
		return true, nil
	default:
		return false, fmt.Errorf("collect %s: %s is a %s, not a file, directory or symbolic link", c.root, p, typeName(mode))
	}
}

func (c *collector) symlink(full, p string, active map[string]bool) (bool, error) {
	target, err := os.Readlink(full)
	if err != nil {
		return false, fmt.Errorf("collect %s: %w", full, err)
	}
	if c.opts.ConfineSymlinks {
		if err := c.confined(full, p, target); err != nil {
			return false, err
		}
	}
	if !c.opts.FollowSymlinks {
		if len(c.inc) > 0 && !matchAny(c.inc, p) {
			return false, nil
		}
		c.out = append(c.out, Entry{Path: p, Mode: fs.ModeSymlink | 0o777, Source: full, Linkname: target})
		return true, nil
	}
	info, err := os.Stat(full)
	if err != nil {
		return false, fmt.Errorf("collect %s: symbolic link %s -> %s: %w", c.root, p, target, err)
	}
	return c.add(full, p, info.Mode().Type(), active)
}

// confined checks that the link at full resolves inside the root. A
// dangling link is judged by its lexical target.
func (c *collector) confined(full, p, target string) error {
	resolved, err := filepath.EvalSymlinks(full)
	if err != nil {
		if filepath.IsAbs(target) {
			resolved = filepath.Clean(target)
		} else {
			dir, err := filepath.EvalSymlinks(filepath.Dir(full))
			if err != nil {
				return fmt.Errorf("collect %s: %w", full, err)
			}
			resolved = filepath.Join(dir, target)
		}
	}
	if !within(c.realRoot, resolved) {
		return fmt.Errorf("collect %s: symbolic link %s -> %s points outside the source directory", c.root, p, target)
	}
	return nil
}

func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// fileMode keeps only "is executable" of a file's permissions.
func fileMode(m fs.FileMode) fs.FileMode {
	if m&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	default:
		return "special file (" + m.String() + ")"
	}
}
