package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// gzipBlockSize is the size of the independently compressed blocks of
// pgzip. The block boundaries depend on this size only, never on how many
// blocks are in flight, so Jobs does not change the output.
const gzipBlockSize = 1 << 20

func writeTar(ctx context.Context, w io.Writer, entries []Entry, opts Options) error {
	es, err := prepare(entries, opts, false)
	if err != nil {
		return err
	}
	mtime := opts.mtime()
	tw := tar.NewWriter(w)
	buf := make([]byte, copyBufSize)
	for _, e := range es {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		// Format is left unset: the writer picks USTAR when the header
		// fits and PAX (path/linkpath records only) for long names. No
		// times are below a second, so no PAX time records appear.
		h := &tar.Header{
			Name:    e.Path,
			Mode:    int64(e.Mode.Perm()),
			ModTime: mtime,
		}
		switch {
		case e.IsDir():
			h.Typeflag = tar.TypeDir
			h.Name += "/"
			if err := tw.WriteHeader(h); err != nil {
				return fmt.Errorf("tar member %s: %w", e.Path, err)
			}
		case e.IsSymlink():
			h.Typeflag = tar.TypeSymlink
			h.Linkname = e.Linkname
			if err := tw.WriteHeader(h); err != nil {
				return fmt.Errorf("tar member %s: %w", e.Path, err)
			}
		default:
			if err := writeTarFile(ctx, tw, h, e, buf); err != nil {
				return fmt.Errorf("tar member %s: %w", e.Path, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("tar: %w", err)
	}
	return nil
}

func writeTarFile(ctx context.Context, tw *tar.Writer, h *tar.Header, e Entry, buf []byte) error {
	r, size, err := openContent(e)
	if err != nil {
		return err
	}
	defer r.Close()
	h.Typeflag = tar.TypeReg
	h.Size = size
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if err := copyExactly(ctx, tw, r, size, buf); err != nil {
		return fmt.Errorf("%s: %w", e.Source, err)
	}
	return nil
}

func writeTarGz(ctx context.Context, w io.Writer, entries []Entry, opts Options) error {
	level := opts.Level
	if level == 0 {
		level = 6
	}
	if level < 1 || level > 9 {
		return fmt.Errorf("gzip level %d: want 1..9", level)
	}
	zw, err := pgzip.NewWriterLevel(w, level)
	if err != nil {
		return err
	}
	if err := zw.SetConcurrency(gzipBlockSize, opts.jobs()); err != nil {
		return err
	}
	// The epoch, not the zero time: pgzip writes ModTime.Unix() as is, and
	// gzip reads an MTIME of 0 as "no time stamp". No Name, no Comment.
	zw.Header.ModTime = unixEpoch
	zw.Header.Name = ""
	zw.Header.Comment = ""
	if err := writeTar(ctx, zw, entries, opts); err != nil {
		zw.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	return nil
}

func writeTarZst(ctx context.Context, w io.Writer, entries []Entry, opts Options) error {
	level := opts.Level
	if level == 0 {
		level = 3
	}
	if level < 1 || level > 22 {
		return fmt.Errorf("zstd level %d: want 1..22", level)
	}
	// The encoder's plain stream mode (no WithConcurrentBlocks) encodes
	// blocks one after the other, each with the history of the ones before;
	// concurrency only overlaps reading with encoding, so the bytes do not
	// depend on Jobs. Job-based block splitting would switch to different
	// output at Jobs == 1 and is left off.
	zw, err := zstd.NewWriter(w,
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(opts.jobs()),
		zstd.WithEncoderCRC(true),
	)
	if err != nil {
		return err
	}
	if err := writeTar(ctx, zw, entries, opts); err != nil {
		zw.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("zstd: %w", err)
	}
	return nil
}
