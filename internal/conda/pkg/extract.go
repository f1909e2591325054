package pkg

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ExtractOptions bound what extraction may consume.
type ExtractOptions struct {
	MaxBytes   int64 // decompressed bytes of all members; 0 means DefaultMaxBytes
	MaxMembers int   // 0 means DefaultMaxMembers
}

// Extract unpacks the package archivePath (.conda or .tar.bz2) into destDir,
// which must not exist or be empty. The package is unpacked into a
// temporary directory beside destDir and renamed into place at the end, so
// destDir either appears complete or not at all.
func Extract(ctx context.Context, archivePath, destDir string, opts ExtractOptions) (err error) {
	format, _, err := FormatOf(archivePath)
	if err != nil {
		return err
	}
	destDir = filepath.Clean(destDir)
	if err := checkEmptyDest(destDir); err != nil {
		return err
	}
	parent := filepath.Dir(destDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(destDir)+".extract-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	x := &extractor{root: tmp, dirs: map[string]bool{"": true}, dirTimes: map[string]time.Time{}}
	lim := newLimits(opts.MaxBytes, opts.MaxMembers)
	switch format {
	case Conda:
		c, err := openConda(archivePath)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := walkZst(ctx, archivePath, c.pkg, lim, x.member); err != nil {
			return err
		}
		if err := walkZst(ctx, archivePath, c.info, lim, x.member); err != nil {
			return err
		}
	case TarBz2:
		if err := walkTarBz2(ctx, archivePath, lim, x.member); err != nil {
			return err
		}
	}
	if err := x.finish(); err != nil {
		return &MemberError{archivePath, "", err}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Remove(destDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("extract %s: %w", archivePath, err)
	}
	// Nothing is fsynced: a package cache checks what it extracted (or
	// extracts again) after a crash, and syncing thousands of files would
	// cost more than extracting them.
	if err := os.Rename(tmp, destDir); err != nil {
		return fmt.Errorf("extract %s: %w", archivePath, err)
	}
	return nil
}

func checkEmptyDest(dir string) error {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err != nil && err != io.EOF {
		return fmt.Errorf("%s: %w", dir, err)
	}
	if len(names) > 0 {
		return fmt.Errorf("%s: destination exists and is not empty", dir)
	}
	return nil
}

// extractor writes members under root, refusing anything that would land
// outside it.
type extractor struct {
	root     string
	dirs     map[string]bool // relative paths known to be real directories
	links    []string        // symlinks, checked once everything is written
	dirTimes map[string]time.Time
}

func (x *extractor) abs(rel string) string { return filepath.Join(x.root, filepath.FromSlash(rel)) }

// mkdirs makes sure every directory above rel exists and none is a link, so
// that no write goes through a symlink.
func (x *extractor) mkdirs(rel string) error {
	dir := path.Dir(rel)
	if dir == "." {
		return nil
	}
	return x.mkdir(dir)
}

func (x *extractor) mkdir(rel string) error {
	if x.dirs[rel] {
		return nil
	}
	if err := x.mkdirs(rel); err != nil {
		return err
	}
	p := x.abs(rel)
	st, err := os.Lstat(p)
	switch {
	case err == nil && st.IsDir():
	case err == nil && st.Mode()&fs.ModeSymlink != 0:
		return unsafef("%s is a symlink; refusing to write below it", rel)
	case err == nil:
		return fmt.Errorf("%s is a file and a directory", rel)
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
	default:
		return err
	}
	x.dirs[rel] = true
	return nil
}

// clear removes a file or link at rel (a member given twice); directories
// stay and make the member an error.
func (x *extractor) clear(rel string) error {
	p := x.abs(rel)
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory and a file", rel)
	}
	return os.Remove(p)
}

func (x *extractor) member(name string, h *tar.Header, r io.Reader) error {
	switch h.Typeflag {
	case tar.TypeDir:
		if err := x.mkdir(name); err != nil {
			return err
		}
		x.dirTimes[name] = h.ModTime
		return nil
	case tar.TypeReg, tar.TypeRegA:
		if err := x.mkdirs(name); err != nil {
			return err
		}
		if err := x.clear(name); err != nil {
			return err
		}
		return x.writeFile(name, h, r)
	case tar.TypeSymlink:
		if err := checkLinkTarget(name, h.Linkname); err != nil {
			return err
		}
		if err := x.mkdirs(name); err != nil {
			return err
		}
		if err := x.clear(name); err != nil {
			return err
		}
		x.links = append(x.links, name)
		return os.Symlink(h.Linkname, x.abs(name))
	case tar.TypeLink:
		target, err := cleanMemberName(h.Linkname)
		if err != nil || target == "" {
			return unsafef("hardlink to %q leads outside the package", h.Linkname)
		}
		if err := x.mkdirs(target); err != nil {
			return unsafef("hardlink to %q: %v", h.Linkname, err)
		}
		st, err := os.Lstat(x.abs(target))
		if err != nil || !st.Mode().IsRegular() {
			return unsafef("hardlink to %q, which is not an earlier regular file of the package", h.Linkname)
		}
		if err := x.mkdirs(name); err != nil {
			return err
		}
		if err := x.clear(name); err != nil {
			return err
		}
		return os.Link(x.abs(target), x.abs(name))
	default:
		return unsafef("member of type %q (device, fifo or other special file) refused", string(h.Typeflag))
	}
}

func (x *extractor) writeFile(name string, h *tar.Header, r io.Reader) error {
	p := x.abs(name)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if err == nil && n != h.Size {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		// 0755 for executables and 0644 for the rest, the modes an
		// installed file gets: a file installed unchanged can then be
		// shared with the extracted package as it is.
		perm := fs.FileMode(0o644)
		if h.Mode&0o111 != 0 {
			perm = 0o755
		}
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Chtimes(p, h.ModTime, h.ModTime)
}

// checkLinkTarget checks lexically that a symlink at name pointing to
// target stays inside the package.
func checkLinkTarget(name, target string) error {
	if target == "" {
		return unsafef("symlink with an empty target")
	}
	if strings.HasPrefix(target, "/") {
		return unsafef("symlink to absolute path %q", target)
	}
	if strings.ContainsRune(target, 0) {
		return unsafef("symlink target contains NUL")
	}
	depth := strings.Count(name, "/") // directories above the link
	for _, part := range strings.Split(target, "/") {
		switch part {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return unsafef("symlink to %q leads outside the package", target)
			}
		default:
			depth++
		}
	}
	return nil
}

// finish checks every symlink against the written tree (a chain of links
// can escape where each link alone does not) and sets directory times.
func (x *extractor) finish() error {
	for _, l := range x.links {
		if err := x.resolveInside(l); err != nil {
			return err
		}
	}
	dirs := make([]string, 0, len(x.dirTimes))
	for d := range x.dirTimes {
		dirs = append(dirs, d)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if err := os.Chtimes(x.abs(d), x.dirTimes[d], x.dirTimes[d]); err != nil {
			return err
		}
	}
	return nil
}

// resolveInside follows the symlink at rel through the tree, component by
// component, and fails if the path ever leaves the root. Components that do
// not exist (links into other packages) are resolved lexically.
func (x *extractor) resolveInside(rel string) error {
	var stack []string // resolved components below root
	pending := strings.Split(rel, "/")
	hops := 0
	for len(pending) > 0 {
		part := pending[0]
		pending = pending[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return unsafef("symlink %s leads outside the package", rel)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		cur := x.abs(path.Join(append(append([]string{}, stack...), part)...))
		st, err := os.Lstat(cur)
		if err != nil || st.Mode()&fs.ModeSymlink == 0 {
			stack = append(stack, part)
			continue
		}
		hops++
		if hops > 255 {
			return unsafef("symlink %s: too many levels of links", rel)
		}
		target, err := os.Readlink(cur)
		if err != nil {
			return err
		}
		if strings.HasPrefix(target, "/") {
			return unsafef("symlink %s leads to absolute path %q", rel, target)
		}
		pending = append(strings.Split(target, "/"), pending...)
	}
	return nil
}
