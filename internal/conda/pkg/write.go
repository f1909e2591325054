package pkg

import (
	"archive/tar"
	"archive/zip"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dsnet/compress/bzip2"
	"github.com/klauspost/compress/zstd"

	"github.com/sparkenv/sparkenv/internal/fsutil"
)

// WriteOptions control Write. The zero value writes what conda's own tools
// write, at their compression levels.
type WriteOptions struct {
	// MTime is the time of every tar member; the zero value means the Unix
	// epoch.
	MTime time.Time
	// ZstdLevel is the zstd level (1–22) of a .conda's inner archives;
	// 0 means 19, as conda does. Lower levels are much faster.
	ZstdLevel int
	// Bzip2Level is the bzip2 level (1–9) of a .tar.bz2; 0 means 9.
	Bzip2Level int
}

// zipTime is the time of the zip members of a .conda: 1980-01-01 00:00, the
// first instant MS-DOS dates can hold.
const (
	zipDate = 1<<5 | 1
	zipTime = 0
)

// metadataJSON is the metadata.json of a .conda, as conda writes it.
const metadataJSON = `{"conda_pkg_format_version": 2}`

// Write packs the prepared package tree srcDir (info/ plus the payload) into
// out, in format, byte-reproducibly: members sorted with info/ kept apart
// (last in a .conda, first in a .tar.bz2), fixed times, owners 0 with no
// names, modes 0644/0755, symlinks kept as links. Only empty directories get
// a member of their own. out's name must end in format's extension; a
// .conda's inner archives are named after its stem.
func Write(ctx context.Context, srcDir string, out string, format Format, opts WriteOptions) error {
	got, stem, err := FormatOf(out)
	if err != nil {
		return err
	}
	if got != format {
		return fmt.Errorf("%s: name does not end in %s", out, format.Ext())
	}
	members, err := scanTree(srcDir)
	if err != nil {
		return err
	}
	var info, payload []member
	for _, m := range members {
		if m.name == "info" || strings.HasPrefix(m.name, "info/") {
			info = append(info, m)
		} else {
			payload = append(payload, m)
		}
	}
	if !hasMember(info, "info/index.json") {
		return fmt.Errorf("%s: info/index.json is missing", srcDir)
	}
	mtime := opts.MTime
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	mtime = mtime.Truncate(time.Second)
	switch format {
	case Conda:
		level := opts.ZstdLevel
		if level == 0 {
			level = 19
		}
		return writeConda(ctx, srcDir, out, stem, info, payload, mtime, level)
	case TarBz2:
		level := opts.Bzip2Level
		if level == 0 {
			level = 9
		}
		return fsutil.WriteFileFrom(out, 0o644, func(w io.Writer) error {
			bw, err := bzip2.NewWriter(w, &bzip2.WriterConfig{Level: level})
			if err != nil {
				return err
			}
			if err := writeTar(ctx, bw, srcDir, append(info, payload...), mtime); err != nil {
				return err
			}
			return bw.Close()
		})
	}
	return fmt.Errorf("unknown package format %v", format)
}

func hasMember(ms []member, name string) bool {
	for _, m := range ms {
		if m.name == name {
			return true
		}
	}
	return false
}

// member is one entry of a package tree.
type member struct {
	name string // slash-separated, relative to the tree
	mode fs.FileMode
	size int64
	link string // symlink target
}

// scanTree lists srcDir's files, symlinks and empty directories, sorted.
func scanTree(srcDir string) ([]member, error) {
	var out []member
	err := filepath.WalkDir(srcDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == srcDir {
			return nil
		}
		rel, err := filepath.Rel(srcDir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		st, err := d.Info()
		if err != nil {
			return err
		}
		m := member{name: rel, mode: st.Mode()}
		switch {
		case st.Mode().IsRegular():
			m.size = st.Size()
		case st.Mode()&fs.ModeSymlink != 0:
			if m.link, err = os.Readlink(p); err != nil {
				return err
			}
		case st.IsDir():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			names, _ := f.Readdirnames(1)
			f.Close()
			if len(names) > 0 {
				return nil // implied by its contents
			}
		default:
			return fmt.Errorf("%s: neither file, directory nor symlink", p)
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", srcDir, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// header is the normalized tar header of m.
func (m member) header(mtime time.Time) *tar.Header {
	// The tar writer picks USTAR when it can and PAX for long or
	// non-ASCII names: both deterministic.
	h := &tar.Header{Name: m.name, ModTime: mtime}
	switch {
	case m.mode.IsRegular():
		h.Typeflag, h.Size, h.Mode = tar.TypeReg, m.size, 0o644
		if m.mode&0o111 != 0 {
			h.Mode = 0o755
		}
	case m.mode&fs.ModeSymlink != 0:
		h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, m.link, 0o777
	default:
		h.Typeflag, h.Name, h.Mode = tar.TypeDir, m.name+"/", 0o755
	}
	return h
}

func writeTar(ctx context.Context, w io.Writer, srcDir string, members []member, mtime time.Time) error {
	tw := tar.NewWriter(w)
	for _, m := range members {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := tw.WriteHeader(m.header(mtime)); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		if !m.mode.IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(srcDir, filepath.FromSlash(m.name)))
		if err != nil {
			return err
		}
		n, err := io.Copy(tw, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		if n != m.size {
			return fmt.Errorf("%s: changed while packing", m.name)
		}
	}
	return tw.Close()
}

// writeConda writes the two zstd tars to temporary files (a stored zip
// member needs its size and CRC up front), then the zip.
func writeConda(ctx context.Context, srcDir, out, stem string, info, payload []member, mtime time.Time, level int) error {
	dir := filepath.Dir(out)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	type inner struct {
		name string
		f    *os.File
		crc  uint32
		size int64
	}
	var inners []*inner
	defer func() {
		for _, in := range inners {
			in.f.Close()
			os.Remove(in.f.Name())
		}
	}()
	for _, part := range []struct {
		name    string
		members []member
	}{{"pkg-" + stem + ".tar.zst", payload}, {"info-" + stem + ".tar.zst", info}} {
		f, err := os.CreateTemp(dir, "."+part.name+".tmp-*")
		if err != nil {
			return err
		}
		in := &inner{name: part.name, f: f}
		inners = append(inners, in)
		crc := crc32.NewIEEE()
		cw := &countWriter{w: io.MultiWriter(f, crc)}
		zw, err := zstd.NewWriter(cw, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
			zstd.WithEncoderConcurrency(1))
		if err != nil {
			return err
		}
		if err := writeTar(ctx, zw, srcDir, part.members, mtime); err != nil {
			zw.Close()
			return fmt.Errorf("%s: %w", part.name, err)
		}
		if err := zw.Close(); err != nil {
			return err
		}
		in.crc, in.size = crc.Sum32(), cw.n
	}
	return fsutil.WriteFileFrom(out, 0o644, func(w io.Writer) error {
		zw := zip.NewWriter(w)
		add := func(name string, crc uint32, size int64, r io.Reader) error {
			fh := &zip.FileHeader{
				Name:               name,
				Method:             zip.Store,
				ModifiedDate:       zipDate,
				ModifiedTime:       zipTime,
				CRC32:              crc,
				CompressedSize64:   uint64(size),
				UncompressedSize64: uint64(size),
			}
			fh.SetMode(0o644)
			zf, err := zw.CreateRaw(fh)
			if err != nil {
				return err
			}
			_, err = io.Copy(zf, r)
			return err
		}
		meta := []byte(metadataJSON)
		if err := add("metadata.json", crc32.ChecksumIEEE(meta), int64(len(meta)), strings.NewReader(metadataJSON)); err != nil {
			return err
		}
		for _, in := range inners {
			if _, err := in.f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			if err := add(in.name, in.crc, in.size, in.f); err != nil {
				return fmt.Errorf("%s: %w", in.name, err)
			}
		}
		return zw.Close()
	})
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
