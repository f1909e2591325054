package archive

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/internal/fsutil"
)

// Format is an archive format.
type Format int

// The formats Write knows.
const (
	Zip Format = iota + 1
	Tar
	TarGz
	TarZst
)

func (f Format) String() string {
	switch f {
	case Zip:
		return "zip"
	case Tar:
		return "tar"
	case TarGz:
		return "tar.gz"
	case TarZst:
		return "tar.zst"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// FormatOf returns the format named by a file name's suffix (.zip, .tar,
// .tar.gz, .tgz, .tar.zst, .tzst), case-insensitively.
func FormatOf(name string) (Format, error) {
	l := strings.ToLower(name)
	switch {
	case strings.HasSuffix(l, ".zip"):
		return Zip, nil
	case strings.HasSuffix(l, ".tar.gz"), strings.HasSuffix(l, ".tgz"):
		return TarGz, nil
	case strings.HasSuffix(l, ".tar.zst"), strings.HasSuffix(l, ".tzst"):
		return TarZst, nil
	case strings.HasSuffix(l, ".tar"):
		return Tar, nil
	}
	return 0, fmt.Errorf("archive name %s: unknown suffix (want .zip, .tar, .tar.gz, .tgz, .tar.zst or .tzst)", name)
}

// SymlinkPolicy says what a writer does with symlink entries.
type SymlinkPolicy int

const (
	// Keep stores links as links. Only tar can; zip refuses it, because
	// Spark unpacks zips with Java code that would silently drop them.
	Keep SymlinkPolicy = iota
	// Refuse fails on the first symlink entry.
	Refuse
	// Dereference stores the file a link points to under the link's path.
	// A link to a directory is an error: collect with FollowSymlinks to
	// take a linked directory's contents through the filters.
	Dereference
)

// DefaultMTime is the time stamped on every member unless Options.MTime is
// set: the earliest time a zip (MS-DOS date) can hold.
var DefaultMTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Options tune a writer. The zero value is valid for tar formats.
type Options struct {
	// Level is the compression level: 0 means the format's default (gzip
	// and zip deflate 6, zstd 3); gzip and zip take 1..9, zstd 1..22 (mapped
	// onto the encoder's four speeds). Ignored for plain tar.
	Level int
	// Jobs is how many goroutines may compress at once (<= 0 means 1). It
	// never changes the bytes written.
	Jobs int
	// MTime is stamped on every member (whole seconds, UTC). Zero means
	// DefaultMTime.
	MTime time.Time
	// Symlinks says what to do with symlink entries.
	Symlinks SymlinkPolicy
}

func (o Options) jobs() int {
	if o.Jobs <= 0 {
		return 1
	}
	return o.Jobs
}

func (o Options) mtime() time.Time {
	if o.MTime.IsZero() {
		return DefaultMTime
	}
	return o.MTime.UTC().Truncate(time.Second)
}

// copyBufSize is the size of the buffers files are streamed through: large
// enough that a copy is a few big reads, small enough to keep one per job.
const copyBufSize = 1 << 20

// Write writes entries as an archive of format to the file out, atomically:
// on error the previous content of out (if any) is left in place.
func Write(ctx context.Context, out string, format Format, entries []Entry, opts Options) error {
	err := fsutil.WriteFileFrom(out, 0o644, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, copyBufSize)
		if err := Encode(ctx, bw, format, entries, opts); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return fmt.Errorf("archive %s: %w", out, err)
	}
	return nil
}

// Encode writes entries as an archive of format to w.
func Encode(ctx context.Context, w io.Writer, format Format, entries []Entry, opts Options) error {
	switch format {
	case Zip:
		return writeZip(ctx, w, entries, opts)
	case Tar:
		return writeTar(ctx, w, entries, opts)
	case TarGz:
		return writeTarGz(ctx, w, entries, opts)
	case TarZst:
		return writeTarZst(ctx, w, entries, opts)
	}
	return fmt.Errorf("unknown archive format %v", format)
}

// WriteTar writes entries as an uncompressed tar stream to w.
func WriteTar(w io.Writer, entries []Entry, opts Options) error {
	return writeTar(context.Background(), w, entries, opts)
}

// WriteZip writes entries as a zip archive to w.
func WriteZip(w io.Writer, entries []Entry, opts Options) error {
	return writeZip(context.Background(), w, entries, opts)
}

// prepare returns a sorted copy of entries with modes normalized and the
// symlink policy applied, refusing invalid or duplicate paths.
func prepare(entries []Entry, opts Options, zip bool) ([]Entry, error) {
	if zip && opts.Symlinks == Keep {
		for _, e := range entries {
			if e.IsSymlink() {
				return nil, fmt.Errorf("symbolic link %s: zip cannot hold symlinks; Spark would lose them (choose Refuse or Dereference)", e.Path)
			}
		}
	}
	out := make([]Entry, len(entries))
	copy(out, entries)
	for i := range out {
		e := &out[i]
		if !artifact.ValidPath(e.Path) {
			return nil, fmt.Errorf("archive member %q: not a clean relative path", e.Path)
		}
		if !utf8.ValidString(e.Path) {
			return nil, fmt.Errorf("archive member %q: name is not valid UTF-8", e.Path)
		}
		switch {
		case e.IsDir():
			e.Mode = fs.ModeDir | 0o755
		case e.IsSymlink():
			switch opts.Symlinks {
			case Refuse:
				return nil, fmt.Errorf("symbolic link %s -> %s: symlinks are refused here", e.Path, e.Linkname)
			case Dereference:
				if e.Source == "" {
					return nil, fmt.Errorf("symbolic link %s -> %s: cannot dereference a link that has no source on disk", e.Path, e.Linkname)
				}
				info, err := os.Stat(e.Source)
				if err != nil {
					return nil, fmt.Errorf("symbolic link %s -> %s: %w", e.Path, e.Linkname, err)
				}
				if !info.Mode().IsRegular() {
					return nil, fmt.Errorf("symbolic link %s -> %s: points to a %s, not a file; collect with FollowSymlinks to take its contents", e.Path, e.Linkname, typeOf(info.Mode()))
				}
				e.Mode = fileMode(info.Mode())
				e.Linkname = ""
				e.Size = info.Size()
			default:
				if e.Linkname == "" {
					return nil, fmt.Errorf("symbolic link %s has no target", e.Path)
				}
				e.Mode = fs.ModeSymlink | 0o777
			}
		case e.Mode&fs.ModeType != 0:
			return nil, fmt.Errorf("archive member %s: unsupported type %s", e.Path, e.Mode.Type())
		default:
			e.Mode = fileMode(e.Mode)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	for i := 1; i < len(out); i++ {
		if out[i].Path == out[i-1].Path {
			return nil, fmt.Errorf("archive member %s appears twice", out[i].Path)
		}
	}
	return out, nil
}

func typeOf(m fs.FileMode) string {
	if m.IsDir() {
		return "directory"
	}
	return typeName(m)
}

// openContent opens a file entry's content and returns it with its size.
// The size is taken from the open file, so a file replaced between Collect
// and now is read consistently.
func openContent(e Entry) (io.ReadCloser, int64, error) {
	if e.Source == "" {
		return io.NopCloser(bytes.NewReader(e.Data)), int64(len(e.Data)), nil
	}
	f, err := os.Open(e.Source)
	if err != nil {
		return nil, 0, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is not a regular file", e.Source)
	}
	return f, info.Size(), nil
}

// errChanged reports a source that grew or shrank while it was archived.
var errChanged = errors.New("file changed size while being archived")

// copyExactly copies exactly n bytes from r to w, checking ctx between
// chunks, and fails when r holds a different number of bytes.
func copyExactly(ctx context.Context, w io.Writer, r io.Reader, n int64, buf []byte) error {
	var done int64
	for {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		m, err := io.ReadFull(r, buf)
		if m > 0 {
			if done+int64(m) > n {
				return errChanged
			}
			if _, werr := w.Write(buf[:m]); werr != nil {
				return werr
			}
			done += int64(m)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			if done != n {
				return errChanged
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}
