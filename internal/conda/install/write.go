package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/sparkenv/sparkenv/internal/conda/pkg"
)

// write creates the directories, then every winning item in parallel. Each
// path has exactly one writer, so the order of writes does not matter.
func (in *installer) write(ctx context.Context, winners []*item) error {
	dirs := in.dirs
	if in.virtual {
		dirs = nil // a layout makes them on demand, for the few files it writes
	}
	for _, d := range dirs {
		p := filepath.Join(in.tmp, filepath.FromSlash(d))
		if err := os.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("install: %w", err)
		}
		// Mkdir is subject to the umask; the tree's modes must not be.
		if err := os.Chmod(p, 0o755); err != nil {
			return fmt.Errorf("install: %w", err)
		}
	}
	var noLinks atomic.Bool
	noLinks.Store(!in.opts.AllowHardlinks)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(in.opts.Jobs)
	for _, it := range winners {
		if gctx.Err() != nil {
			break
		}
		if it.done {
			continue
		}
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			if err := in.writeItem(it, &noLinks); err != nil {
				return fmt.Errorf("install: package %s: %s: %w", in.pkgs[it.pkg].dist, it.dest, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// The loop may have stopped early without any job failing.
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	for _, it := range winners {
		switch it.method {
		case methodLinked:
			in.report.Linked++
		case methodCopied:
			in.report.Copied++
		case methodPatched:
			in.report.Patched++
		}
		in.report.Files++
		if it.method != methodSymlink {
			in.report.Bytes += it.sizeInPrefix
		}
	}
	return nil
}

func (in *installer) writeItem(it *item, noLinks *atomic.Bool) error {
	dst := filepath.Join(in.tmp, filepath.FromSlash(it.phys))
	switch it.kind {
	case kindSymlink:
		it.method = methodSymlink
		if in.virtual {
			return nil
		}
		if err := os.Symlink(it.target, dst); err != nil {
			return err
		}
		return setLinkTime(dst, in.fixed)
	case kindEntryPoint:
		if err := in.makeParent(dst); err != nil {
			return err
		}
		if err := writeNew(dst, it.data, 0o755, in.fixed); err != nil {
			return err
		}
		it.method, it.mode, it.source = methodGenerated, 0o755, dst
		it.sha256InPrefix, it.sizeInPrefix = sha256Hex(it.data), int64(len(it.data))
		return nil
	}
	src := filepath.Join(in.pkgs[it.pkg].pkg.Dir, filepath.FromSlash(it.entry.Path))
	if it.entry.PrefixPlaceholder != "" {
		if err := in.makeParent(dst); err != nil {
			return err
		}
		return in.patchFile(it, src, dst)
	}
	// Only a regular file whose mode is already what the tree gets can be
	// shared with the package directory; anything else is copied.
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	shareable := fi.Mode().IsRegular() && fi.Mode().Perm() == normPerm(fi.Mode())
	if in.virtual && shareable {
		it.mode, it.source, it.sizeInPrefix = fi.Mode().Perm(), src, fi.Size()
		it.method = methodCopied
		if in.opts.AllowHardlinks && !it.entry.NoLink {
			it.method = methodLinked
		}
		return in.finishUnchanged(it, src, nil)
	}
	if !in.virtual && shareable && !it.entry.NoLink && !noLinks.Load() {
		err := unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, 0)
		if err == nil {
			it.method, it.mode, it.source = methodLinked, fi.Mode().Perm(), dst
			return in.finishUnchanged(it, src, nil)
		}
		switch err {
		case unix.EXDEV, unix.EPERM, unix.ENOTSUP, unix.ENOSYS:
			// Across devices or on a file system without hardlinks every
			// later attempt would fail the same way.
			noLinks.Store(true)
		}
	}
	// A link in the package directory is copied as the file it names:
	// the prefix gets a file where the package lists one.
	if err := in.makeParent(dst); err != nil {
		return err
	}
	return in.copyFile(it, src, dst)
}

// makeParent creates the directory of dst in a layout, which makes only
// the directories of the files it writes; an install has made them all.
func (in *installer) makeParent(dst string) error {
	if !in.virtual {
		return nil
	}
	return os.MkdirAll(filepath.Dir(dst), 0o755)
}

// finishUnchanged records hash and size of a file installed unchanged, using
// paths.json when it has them and reading the file only when it does not.
func (in *installer) finishUnchanged(it *item, src string, sum hash.Hash) error {
	switch {
	case sum != nil:
		it.sha256 = hex.EncodeToString(sum.Sum(nil))
	case it.entry.SHA256 == "":
		s, err := hashFile(src)
		if err != nil {
			return err
		}
		it.sha256 = s
	default:
		it.sha256 = it.entry.SHA256
	}
	it.sha256InPrefix = it.sha256
	if it.entry.Size > 0 && it.method == methodLinked {
		it.sizeInPrefix = it.entry.Size
		return nil
	}
	if it.sizeInPrefix == 0 {
		fi, err := os.Stat(src)
		if err != nil {
			return err
		}
		it.sizeInPrefix = fi.Size()
	}
	return nil
}

// copyBufs are the buffers of copies that cannot go through copy_file_range
// (those that hash on the way).
var copyBufs = make(chan []byte, 64)

func getBuf() []byte {
	select {
	case b := <-copyBufs:
		return b
	default:
		return make([]byte, 1<<20)
	}
}

func putBuf(b []byte) {
	select {
	case copyBufs <- b:
	default:
	}
}

func (in *installer) copyFile(it *item, src, dst string) error {
	r, err := os.Open(src)
	if err != nil {
		return err
	}
	defer r.Close()
	fi, err := r.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", src)
	}
	perm := normPerm(fi.Mode())
	w, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	var sum hash.Hash
	var n int64
	if it.entry.SHA256 == "" {
		// Legacy packages carry no hashes; compute it on the way through.
		sum = sha256.New()
		buf := getBuf()
		n, err = io.CopyBuffer(io.MultiWriter(w, sum), r, buf)
		putBuf(buf)
	} else {
		// ReadFrom uses copy_file_range (a reflink on file systems that
		// share extents) and falls back to a plain copy.
		n, err = w.ReadFrom(r)
	}
	if err == nil {
		err = w.Chmod(perm)
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// The packaged mtime keeps shipped .pyc files valid for their sources.
	if err := os.Chtimes(dst, fi.ModTime(), fi.ModTime()); err != nil {
		return err
	}
	it.method, it.mode, it.source = methodCopied, perm, dst
	it.sizeInPrefix = n
	return in.finishUnchanged(it, src, sum)
}

func (in *installer) patchFile(it *item, src, dst string) error {
	r, err := os.Open(src)
	if err != nil {
		return err
	}
	fi, err := r.Stat()
	if err != nil {
		r.Close()
		return err
	}
	if !fi.Mode().IsRegular() {
		r.Close()
		return fmt.Errorf("%s is not a regular file", src)
	}
	data := make([]byte, 0, fi.Size()+512)
	data, err = readAllInto(r, data)
	r.Close()
	if err != nil {
		return err
	}
	it.sha256 = it.entry.SHA256
	if it.sha256 == "" {
		it.sha256 = sha256Hex(data)
	}
	switch it.entry.FileMode {
	case pkg.FileModeBinary:
		if _, err := patchBinary(data, it.entry.PrefixPlaceholder, in.prefix); err != nil {
			return err
		}
	default:
		data = patchText(data, it.entry.PrefixPlaceholder, in.prefix)
		data = fixShebang(data, in.prefix)
	}
	if err := writeNew(dst, data, normPerm(fi.Mode()), in.fixed); err != nil {
		return err
	}
	it.method, it.mode, it.source = methodPatched, normPerm(fi.Mode()), dst
	it.sha256InPrefix, it.sizeInPrefix = sha256Hex(data), int64(len(data))
	return nil
}

func readAllInto(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// writeNew creates name (which must not exist) with data, perm and mtime.
func writeNew(name string, data []byte, perm os.FileMode, mtime time.Time) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Chtimes(name, mtime, mtime)
}

// normPerm reduces a mode to 0755 for executables and 0644 otherwise.
func normPerm(m fs.FileMode) fs.FileMode {
	if m&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

func setLinkTime(p string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "lutimes", Path: p, Err: err}
	}
	return nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	buf := getBuf()
	defer putBuf(buf)
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// finishDirs gives every directory, the root included, the fixed mtime,
// deepest first so that setting a child does not disturb its parent.
func (in *installer) finishDirs() error {
	all := append([]string{}, in.dirs...)
	all = append(all, "conda-meta")
	for i := len(all) - 1; i >= 0; i-- {
		p := filepath.Join(in.tmp, filepath.FromSlash(all[i]))
		if err := os.Chtimes(p, in.fixed, in.fixed); err != nil {
			return fmt.Errorf("install: %w", err)
		}
	}
	if err := os.Chmod(in.tmp, 0o755); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if err := os.Chtimes(in.tmp, in.fixed, in.fixed); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("install: sync %s: %w", dir, err)
	}
	return nil
}
