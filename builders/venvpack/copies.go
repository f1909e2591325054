package venvpack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/condaenv"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/fsutil"
)

// copyInterpreter lays the environment's conda packages out in a scratch
// prefix and copies into dest what the interpreter needs to run from
// there: bin/pythonX.Y (with bin/python and bin/pythonX links to it), the
// shared libraries at the top of lib/ (libpython and the libraries the
// standard library's extension modules load through their $ORIGIN-relative
// RPATH), and the standard library lib/pythonX.Y without site-packages.
// Python finds its home from the executable's location, so the copy runs
// wherever it is unpacked.
func copyInterpreter(ctx context.Context, req *builders.Request, res *lock.Resolved, dest, xy string) error {
	conda, err := os.MkdirTemp(req.TempDir, "conda-")
	if err != nil {
		return err
	}
	// The declared prefix, not the scratch path, goes into patched files so
	// that the bytes do not depend on where this build ran.
	if _, err := condaenv.Stage(ctx, req, res, conda, res.Prefix); err != nil {
		return fmt.Errorf("lay out %s: %w", res.Name, err)
	}
	exe := "python" + xy
	if err := fsutil.CopyFile(filepath.Join(conda, "bin", exe), filepath.Join(dest, "bin", exe), 0o755); err != nil {
		return fmt.Errorf("the environment's python has no bin/%s: %w", exe, err)
	}
	for _, name := range []string{"python", "python" + strings.SplitN(xy, ".", 2)[0]} {
		if err := os.Symlink(exe, filepath.Join(dest, "bin", name)); err != nil {
			return err
		}
	}
	des, err := os.ReadDir(filepath.Join(conda, "lib"))
	if err != nil {
		return err
	}
	for _, de := range des {
		if !strings.Contains(de.Name(), ".so") || de.IsDir() {
			continue
		}
		if err := copyEntry(filepath.Join(conda, "lib", de.Name()), filepath.Join(dest, "lib", de.Name())); err != nil {
			return err
		}
	}
	stdlib := filepath.Join(conda, "lib", "python"+xy)
	return filepath.WalkDir(stdlib, func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(stdlib, p)
		if rel == "site-packages" || strings.HasPrefix(rel, "site-packages"+string(filepath.Separator)) {
			if de.IsDir() && rel != "site-packages" {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dest, "lib", "python"+xy, rel)
		if de.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return copyEntry(p, target)
	})
}

// copyEntry copies a file (keeping its exec bit) or recreates a link.
func copyEntry(src, dst string) error {
	st, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if st.Mode()&os.ModeSymlink != 0 {
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	}
	if !st.Mode().IsRegular() {
		return nil
	}
	mode := os.FileMode(0o644)
	if st.Mode()&0o111 != 0 {
		mode = 0o755
	}
	// A hard link is enough: the scratch trees are read, never changed.
	return fsutil.LinkOrCopy(src, dst, mode)
}
