package pkg

import (
	"archive/tar"
	"archive/zip"
	"compress/bzip2"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// ErrUnsafe marks an archive member that extraction refuses: an absolute
// or `..` name, a link leading outside the destination, a device file, or
// limits exceeded.
var ErrUnsafe = errors.New("unsafe archive member")

// MemberError is an error about one member of an archive. Member is the
// inner archive and tar member, e.g. "pkg-x-1-0.tar.zst:lib/x.so".
type MemberError struct {
	Archive string
	Member  string
	Err     error
}

func (e *MemberError) Error() string {
	if e.Member == "" {
		return e.Archive + ": " + e.Err.Error()
	}
	return e.Archive + ": " + e.Member + ": " + e.Err.Error()
}

func (e *MemberError) Unwrap() error { return e.Err }

func unsafef(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsafe}, args...)...)
}

const (
	// DefaultMaxBytes bounds the decompressed size of a package.
	DefaultMaxBytes = 10 << 30
	// DefaultMaxMembers bounds the number of members of a package.
	DefaultMaxMembers = 1 << 20
	// maxWindow bounds the zstd window (and so decoder memory); conda's
	// writers use far less.
	maxWindow    = 1 << 28
	maxMetadata  = 1 << 20
	condaVersion = 2
)

// limits counts what a read has consumed, across the inner archives of a
// .conda.
type limits struct {
	maxBytes   int64
	maxMembers int
	bytes      int64
	members    int
}

func newLimits(maxBytes int64, maxMembers int) *limits {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if maxMembers <= 0 {
		maxMembers = DefaultMaxMembers
	}
	return &limits{maxBytes: maxBytes, maxMembers: maxMembers}
}

// rawReader bounds the decompressed tar stream itself: member data is
// bounded by add, and headers, padding and whatever follows the end of the
// tar may add a few blocks per member, no more.
type rawReader struct {
	r   io.Reader
	lim *limits
	n   int64
}

func (l *limits) raw(r io.Reader) io.Reader { return &rawReader{r: r, lim: l} }

func (r *rawReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	if r.n > r.lim.rawAllowance() {
		return n, unsafef("more than %d bytes of tar headers and padding", r.n-r.lim.bytes)
	}
	return n, err
}

// rawAllowance is how many decompressed bytes the members read so far
// justify.
func (l *limits) rawAllowance() int64 {
	return l.bytes + int64(l.members+1)*8192 + 1<<20
}

func (l *limits) add(h *tar.Header) error {
	l.members++
	if l.members > l.maxMembers {
		return unsafef("more than %d members", l.maxMembers)
	}
	if h.Size < 0 {
		return unsafef("negative size")
	}
	l.bytes += h.Size
	if l.bytes > l.maxBytes {
		return unsafef("more than %d bytes decompressed", l.maxBytes)
	}
	return nil
}

// tarVisitor receives each member of a tar with its cleaned name; r reads
// the member's content. Returning errStop ends the walk early.
type tarVisitor func(name string, h *tar.Header, r io.Reader) error

var errStop = errors.New("stop")

// walkTar visits the members of the tar in r. inner names the tar inside a
// .conda ("" for a .tar.bz2) for error messages.
func walkTar(ctx context.Context, archive, inner string, r io.Reader, lim *limits, visit tarVisitor) error {
	tr := tar.NewReader(r)
	member := func(name string) string {
		if inner == "" {
			return name
		}
		if name == "" {
			return inner
		}
		return inner + ":" + name
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &MemberError{archive, member(""), fmt.Errorf("read tar: %w", err)}
		}
		if err := lim.add(h); err != nil {
			return &MemberError{archive, member(h.Name), err}
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue // PAX records for the whole archive, not a file
		}
		name, err := cleanMemberName(h.Name)
		if err != nil {
			return &MemberError{archive, member(h.Name), err}
		}
		if name == "" {
			continue // the root itself ("./")
		}
		if err := visit(name, h, tr); err != nil {
			if err == errStop {
				return errStop
			}
			var me *MemberError
			if errors.As(err, &me) {
				return err
			}
			return &MemberError{archive, member(h.Name), err}
		}
	}
}

// cleanMemberName validates a tar member name and returns it without a
// leading "./" or trailing "/"; "" is the archive root.
func cleanMemberName(name string) (string, error) {
	if name == "" {
		return "", unsafef("empty name")
	}
	if strings.HasPrefix(name, "/") {
		return "", unsafef("absolute path %q", name)
	}
	if strings.ContainsRune(name, 0) {
		return "", unsafef("bad name %q", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", unsafef("path %q contains ..", name)
		}
	}
	c := path.Clean(name)
	if c == "." {
		return "", nil
	}
	return c, nil
}

// condaMembers opens a .conda and checks metadata.json and the inner
// archives' names.
type condaArchive struct {
	zr   *zip.ReadCloser
	info *zip.File
	pkg  *zip.File
}

func openConda(archivePath string) (*condaArchive, error) {
	_, stem, err := FormatOf(archivePath)
	if err != nil {
		return nil, err
	}
	zr, err := zip.OpenReader(archivePath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", archivePath, err)
	}
	c := &condaArchive{zr: zr}
	var meta *zip.File
	for _, f := range zr.File {
		switch f.Name {
		case "metadata.json":
			meta = f
		case "pkg-" + stem + ".tar.zst":
			c.pkg = f
		case "info-" + stem + ".tar.zst":
			c.info = f
		}
	}
	fail := func(member string, err error) (*condaArchive, error) {
		zr.Close()
		return nil, &MemberError{archivePath, member, err}
	}
	if meta == nil {
		return fail("", errors.New("metadata.json is missing: not a .conda package"))
	}
	rc, err := meta.Open()
	if err != nil {
		return fail("metadata.json", err)
	}
	b, err := io.ReadAll(io.LimitReader(rc, maxMetadata))
	rc.Close()
	if err != nil {
		return fail("metadata.json", err)
	}
	var m struct {
		Version int `json:"conda_pkg_format_version"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return fail("metadata.json", err)
	}
	if m.Version != condaVersion {
		return fail("metadata.json", fmt.Errorf("conda_pkg_format_version %d is not supported (want %d)", m.Version, condaVersion))
	}
	if c.info == nil {
		return fail("", fmt.Errorf("info-%s.tar.zst is missing (was the file renamed?)", stem))
	}
	if c.pkg == nil {
		return fail("", fmt.Errorf("pkg-%s.tar.zst is missing (was the file renamed?)", stem))
	}
	return c, nil
}

func (c *condaArchive) Close() error { return c.zr.Close() }

// walkZst walks the zstd tar in member f of the .conda.
func walkZst(ctx context.Context, archive string, f *zip.File, lim *limits, visit tarVisitor) error {
	rc, err := f.Open()
	if err != nil {
		return &MemberError{archive, f.Name, err}
	}
	defer rc.Close()
	zr, err := zstd.NewReader(rc, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxWindow),
		zstd.WithDecoderMaxMemory(uint64(lim.maxBytes)+1<<20))
	if err != nil {
		return &MemberError{archive, f.Name, err}
	}
	defer zr.Close()
	raw := lim.raw(zr)
	err = walkTar(ctx, archive, f.Name, raw, lim, visit)
	if err != nil {
		return err
	}
	// Read to the end so that a corrupt tail (or zip CRC) is noticed.
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return &MemberError{archive, f.Name, err}
	}
	return nil
}

// walkTarBz2 walks a .tar.bz2 package.
func walkTarBz2(ctx context.Context, archive string, lim *limits, visit tarVisitor) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	return walkTar(ctx, archive, "", lim.raw(bzip2.NewReader(f)), lim, visit)
}

// ReadInfo reads the info/ part of a package archive. For a .conda only the
// info archive is decompressed; for a .tar.bz2 reading stops after the
// leading info/ members (where conda-build puts them), and goes on to the
// end when they are not leading.
func ReadInfo(archivePath string) (*Info, error) {
	return readInfo(context.Background(), archivePath, ExtractOptions{})
}

func readInfo(ctx context.Context, archivePath string, opts ExtractOptions) (*Info, error) {
	format, _, err := FormatOf(archivePath)
	if err != nil {
		return nil, err
	}
	lim := newLimits(opts.MaxBytes, opts.MaxMembers)
	files := map[string][]byte{}
	collect := func(name string, h *tar.Header, r io.Reader) error {
		if !infoFiles[name] {
			return nil
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA {
			return fmt.Errorf("not a regular file")
		}
		if h.Size > maxInfoFile {
			return unsafef("%d bytes is too large for a metadata file", h.Size)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		files[name] = b
		return nil
	}
	// Link types of legacy packages (info/files only) come from the headers.
	links := map[string]bool{}
	sizes := map[string]int64{}
	recordPayload := func(name string, h *tar.Header) {
		if h.Typeflag == tar.TypeSymlink {
			links[name] = true
		} else {
			sizes[name] = h.Size
		}
	}
	switch format {
	case Conda:
		c, err := openConda(archivePath)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		if err := walkZst(ctx, archivePath, c.info, lim, collect); err != nil {
			return nil, err
		}
		if _, hasPaths := files["info/paths.json"]; !hasPaths {
			err := walkZst(ctx, archivePath, c.pkg, lim, func(name string, h *tar.Header, r io.Reader) error {
				recordPayload(name, h)
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	case TarBz2:
		leading := true // still within the leading run of info/ members
		err := walkTarBz2(ctx, archivePath, lim, func(name string, h *tar.Header, r io.Reader) error {
			if strings.HasPrefix(name, "info/") || name == "info" {
				return collect(name, h, r)
			}
			recordPayload(name, h)
			_, hasIndex := files["info/index.json"]
			_, hasPaths := files["info/paths.json"]
			if leading && len(files) > 0 && hasIndex && hasPaths {
				return errStop
			}
			if len(files) == 0 {
				leading = false
			}
			return nil
		})
		if err != nil && err != errStop {
			return nil, err
		}
	}
	info, err := parseInfo(files)
	if err != nil {
		return nil, &MemberError{archivePath, "", err}
	}
	if info.Legacy {
		for i := range info.Paths {
			e := &info.Paths[i]
			if links[e.Path] {
				e.PathType = PathSoftlink
			} else {
				e.Size = sizes[e.Path]
			}
		}
	}
	return info, nil
}
