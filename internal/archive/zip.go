package archive

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"sync"
	"time"

	"github.com/klauspost/compress/flate"
)

var unixEpoch = time.Unix(0, 0)

// Zip header constants the standard writer does not export.
const (
	zipVersion20   = 20
	zipVersion45   = 45
	zipCreatorUnix = 3
	zipFlagDesc    = 0x8   // sizes and CRC follow the data
	zipFlagUTF8    = 0x800 // names are UTF-8
	msdosDirAttr   = 0x10
)

// zipBufferLimit is the largest member compressed ahead into memory by a
// worker; bigger members are streamed by the writing goroutine. The choice
// depends on the size alone, so the bytes do not depend on Jobs.
const zipBufferLimit = 8 << 20

// writeZip writes members with CreateRaw so that headers are exactly what
// is set here: the standard CreateHeader adds an extended-timestamp extra
// field whenever Modified is set. Every file member has a data descriptor,
// so members can be streamed without knowing their compressed size first.
func writeZip(ctx context.Context, w io.Writer, entries []Entry, opts Options) error {
	es, err := prepare(entries, opts, true)
	if err != nil {
		return err
	}
	level := opts.Level
	if level == 0 {
		level = 6
	}
	if level < 1 || level > 9 {
		return fmt.Errorf("zip deflate level %d: want 1..9", level)
	}
	mtime := opts.mtime()
	if mtime.Year() < 1980 || mtime.Year() > 2107 {
		return fmt.Errorf("zip: time %s cannot be stored (MS-DOS dates span 1980..2107)", mtime)
	}
	date, clock := msdosTime(mtime)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := startZipJobs(ctx, es, level, opts.jobs())

	zw := zip.NewWriter(w)
	buf := make([]byte, copyBufSize)
	var fw *flate.Writer
	for i, e := range es {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		fh := &zip.FileHeader{
			Name:           e.Path,
			CreatorVersion: zipCreatorUnix<<8 | zipVersion20,
			ReaderVersion:  zipVersion20,
			ModifiedDate:   date,
			ModifiedTime:   clock,
			ExternalAttrs:  unixMode(e.Mode) << 16,
		}
		if !isASCII(e.Path) {
			fh.Flags |= zipFlagUTF8
		}
		if e.IsDir() {
			fh.Name += "/"
			fh.Method = zip.Store
			fh.ExternalAttrs |= msdosDirAttr
			if _, err := zw.CreateRaw(fh); err != nil {
				return fmt.Errorf("zip member %s: %w", e.Path, err)
			}
			continue
		}
		fh.Method = zip.Deflate
		fh.Flags |= zipFlagDesc
		out, err := zw.CreateRaw(fh)
		if err != nil {
			return fmt.Errorf("zip member %s: %w", e.Path, err)
		}
		var res deflated
		if j := jobs.jobs[i]; j != nil {
			select {
			case <-j.done:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			if j.err != nil {
				cancel(j.err)
				return fmt.Errorf("zip member %s: %w", e.Path, j.err)
			}
			_, err := out.Write(j.buf.Bytes())
			j.buf.Reset()
			outPool.Put(j.buf)
			j.buf = nil
			jobs.release()
			if err != nil {
				return err
			}
			res = j.res
		} else {
			if fw == nil {
				fw = getFlate(level)
				defer flatePool[level].Put(fw)
			}
			res, err = deflateEntry(ctx, fw, out, e, buf)
			if err != nil {
				return fmt.Errorf("zip member %s: %w", e.Path, err)
			}
		}
		// The standard writer reads these when it writes the data
		// descriptor and the central directory.
		fh.CRC32 = res.crc
		fh.CompressedSize64 = res.csize
		fh.UncompressedSize64 = res.usize
		fh.CompressedSize = clamp32(res.csize)
		fh.UncompressedSize = clamp32(res.usize)
		if res.csize >= 0xffffffff || res.usize >= 0xffffffff {
			fh.ReaderVersion = zipVersion45 // sizes in zip64 records
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("zip: %w", err)
	}
	return nil
}

type deflated struct {
	crc          uint32
	csize, usize uint64
}

type countWriter struct {
	w io.Writer
	n uint64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += uint64(n)
	return n, err
}

type crcWriter struct {
	w   io.Writer
	crc uint32
}

func (c *crcWriter) Write(p []byte) (int, error) {
	c.crc = crc32.Update(c.crc, crc32.IEEETable, p)
	return c.w.Write(p)
}

// deflateEntry compresses e's content through fw (already reset onto a
// writer that counts into out).
func deflateEntry(ctx context.Context, fw *flate.Writer, out io.Writer, e Entry, buf []byte) (deflated, error) {
	cw := &countWriter{w: out}
	fw.Reset(cw)
	r, size, err := openContent(e)
	if err != nil {
		return deflated{}, err
	}
	defer r.Close()
	crc := &crcWriter{w: fw}
	if err := copyExactly(ctx, crc, r, size, buf); err != nil {
		return deflated{}, fmt.Errorf("%s: %w", e.Source, err)
	}
	if err := fw.Close(); err != nil {
		return deflated{}, err
	}
	return deflated{crc: crc.crc, csize: cw.n, usize: uint64(size)}, nil
}

// zipJob is one member compressed ahead of the writer.
type zipJob struct {
	done chan struct{}
	buf  *bytes.Buffer
	res  deflated
	err  error
}

// zipJobs compresses small members ahead of the writer.
type zipJobs struct {
	jobs []*zipJob
	// window holds a token for each job started and not yet written, so
	// at most cap(window) compressed members sit in memory.
	window chan struct{}
}

// release returns the token of a job the writer has written.
func (z *zipJobs) release() { <-z.window }

var flatePool [10]sync.Pool

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// outPool recycles the buffers members are compressed into.
var outPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getFlate(level int) *flate.Writer {
	if fw, ok := flatePool[level].Get().(*flate.Writer); ok {
		return fw
	}
	fw, _ := flate.NewWriter(nil, level)
	return fw
}

// startZipJobs compresses small members in up to n goroutines, in archive
// order. jobs[i] is nil for a member the writer streams itself.
func startZipJobs(ctx context.Context, es []Entry, level, n int) *zipJobs {
	z := &zipJobs{jobs: make([]*zipJob, len(es))}
	if n <= 1 {
		return z
	}
	for i, e := range es {
		if !e.IsDir() && entrySize(e) <= zipBufferLimit {
			z.jobs[i] = &zipJob{done: make(chan struct{})}
		}
	}
	z.window = make(chan struct{}, 2*n)
	sem := make(chan struct{}, n)
	go func() {
		for i, j := range z.jobs {
			if j == nil {
				continue
			}
			select {
			case z.window <- struct{}{}:
			case <-ctx.Done():
				j.err = context.Cause(ctx)
				close(j.done)
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				j.err = context.Cause(ctx)
				close(j.done)
				continue
			}
			go func(e Entry, j *zipJob) {
				defer func() { <-sem; close(j.done) }()
				if err := ctx.Err(); err != nil {
					j.err = context.Cause(ctx)
					return
				}
				fw := getFlate(level)
				buf := bufPool.Get().(*[]byte)
				j.buf = outPool.Get().(*bytes.Buffer)
				j.buf.Grow(int(entrySize(e)) + 4096)
				// The same chunk size as the writer's own, so the
				// compressor sees the same writes either way.
				j.res, j.err = deflateEntry(ctx, fw, j.buf, e, *buf)
				bufPool.Put(buf)
				flatePool[level].Put(fw)
			}(es[i], j)
		}
	}()
	return z
}

// entrySize is the size used to choose between compressing ahead and
// streaming: the size recorded by Collect, else the data length.
func entrySize(e Entry) int64 {
	if e.Source == "" {
		return int64(len(e.Data))
	}
	return e.Size
}

func clamp32(n uint64) uint32 {
	if n > 0xffffffff {
		return 0xffffffff
	}
	return uint32(n)
}

// msdosTime converts t (UTC) to MS-DOS date and time fields.
func msdosTime(t time.Time) (uint16, uint16) {
	date := uint16(t.Day() + int(t.Month())<<5 + (t.Year()-1980)<<9)
	clock := uint16(t.Second()/2 + t.Minute()<<5 + t.Hour()<<11)
	return date, clock
}

// unixMode is the st_mode of a normalized entry mode.
func unixMode(m fs.FileMode) uint32 {
	const (
		sIFREG = 0o100000
		sIFDIR = 0o040000
		sIFLNK = 0o120000
	)
	mode := uint32(m.Perm())
	switch {
	case m.IsDir():
		return mode | sIFDIR
	case m&fs.ModeSymlink != 0:
		return mode | sIFLNK
	}
	return mode | sIFREG
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
