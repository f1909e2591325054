package repodata

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Repodata is one subdir's index: the parsed form of repodata.json.
type Repodata struct {
	Info            Info
	Packages        map[string]Record // .tar.bz2 records by file name
	PackagesConda   map[string]Record // .conda records by file name
	Removed         []string
	RepodataVersion int
}

// Info is the top-level "info" object. BaseURL (CEP 15) is where the package
// files live when they are not beside repodata.json; it may be relative to
// the repodata URL.
type Info struct {
	Subdir  string
	BaseURL string
}

// Archive file extensions of conda packages (CEP 35).
const (
	ExtConda  = ".conda"
	ExtTarBz2 = ".tar.bz2"
)

// maxDecoded bounds what a zstd stream may expand to, so that a hostile or
// corrupt file fails instead of exhausting memory. conda-forge's largest
// subdir is a few hundred MB uncompressed.
var maxDecoded uint64 = 4 << 30

// decoders are reused: a zstd decoder holds large buffers.
var decoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxDecoded))
	if err != nil {
		panic(err) // only invalid options make NewReader fail
	}
	return d
}}

// Decompress expands a zstd stream (as served for repodata.json.zst and
// shards). It streams rather than trusting the frame header's content size,
// which a corrupt file can set to anything.
func Decompress(data []byte) ([]byte, error) {
	d := decoders.Get().(*zstd.Decoder)
	defer decoders.Put(d)
	if err := d.Reset(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	// a guess at the ratio saves most regrowth on real files
	buf := bytes.NewBuffer(make([]byte, 0, min(8*len(data)+512, 64<<20)))
	n, err := io.Copy(buf, io.LimitReader(d, int64(maxDecoded)+1))
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	if uint64(n) > maxDecoded {
		return nil, fmt.Errorf("zstd: decoded size exceeds %d bytes", maxDecoded)
	}
	return buf.Bytes(), nil
}

// Parse reads repodata.json leniently: unknown keys are ignored, records are
// read as Record.UnmarshalJSON reads them, a record's FileName comes from its
// key and an empty Subdir from info.subdir. Only the first JSON value of
// data is read.
func Parse(data []byte) (*Repodata, error) {
	r, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("repodata: %w", err)
	}
	return r, nil
}

// ParseZst reads repodata.json.zst.
func ParseZst(data []byte) (*Repodata, error) {
	plain, err := Decompress(data)
	if err != nil {
		return nil, fmt.Errorf("repodata: %w", err)
	}
	return Parse(plain)
}

// Records returns the records of both maps, ordered by name, then file name.
// A package offered as both .tar.bz2 and .conda appears twice; see Dedup.
func (r *Repodata) Records() []Record {
	out := make([]Record, 0, len(r.Packages)+len(r.PackagesConda))
	for k, rec := range r.Packages {
		if rec.FileName == "" {
			rec.FileName = k
		}
		out = append(out, rec)
	}
	for k, rec := range r.PackagesConda {
		if rec.FileName == "" {
			rec.FileName = k
		}
		out = append(out, rec)
	}
	SortRecords(out)
	return out
}

// SortRecords orders records by name, then file name, then URL: the order
// Records returns and writers rely on.
func SortRecords(recs []Record) {
	sort.Slice(recs, func(i, j int) bool {
		a, b := &recs[i], &recs[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.FileName != b.FileName {
			return a.FileName < b.FileName
		}
		return a.URL < b.URL
	})
}

// Stem is a package file name without its archive extension
// (name-version-build), or "" when the name has neither extension.
func Stem(fileName string) string {
	if s, ok := strings.CutSuffix(fileName, ExtConda); ok {
		return s
	}
	if s, ok := strings.CutSuffix(fileName, ExtTarBz2); ok {
		return s
	}
	return ""
}

// Dedup drops each .tar.bz2 record for which the same channel and subdir
// also offer a .conda file of the same stem, as conda does: both archives
// hold the same package and .conda is faster to extract. Order is kept.
func Dedup(recs []Record) []Record {
	type key struct{ channel, subdir, stem string }
	conda := make(map[key]bool)
	for i := range recs {
		if s, ok := strings.CutSuffix(recs[i].FileName, ExtConda); ok {
			conda[key{recs[i].Channel, recs[i].Subdir, s}] = true
		}
	}
	out := make([]Record, 0, len(recs))
	for _, r := range recs {
		if s, ok := strings.CutSuffix(r.FileName, ExtTarBz2); ok && conda[key{r.Channel, r.Subdir, s}] {
			continue
		}
		out = append(out, r)
	}
	return out
}

// FromRecords builds a Repodata of one subdir, placing each record by its
// file extension. Every record needs a FileName; an empty Subdir becomes
// subdir.
func FromRecords(subdir string, recs []Record) (*Repodata, error) {
	r := &Repodata{
		Info:            Info{Subdir: subdir},
		Packages:        map[string]Record{},
		PackagesConda:   map[string]Record{},
		RepodataVersion: 1,
	}
	for _, rec := range recs {
		fn := rec.FileName
		if fn == "" {
			return nil, fmt.Errorf("repodata: record %s has no file name", rec.DistName())
		}
		if rec.Subdir == "" {
			rec.Subdir = subdir
		}
		var m map[string]Record
		switch {
		case strings.HasSuffix(fn, ExtConda):
			m = r.PackagesConda
		case strings.HasSuffix(fn, ExtTarBz2):
			m = r.Packages
		default:
			return nil, fmt.Errorf("repodata: %s: not a conda package file name (want .conda or .tar.bz2)", fn)
		}
		if _, dup := m[fn]; dup {
			return nil, fmt.Errorf("repodata: %s: two records with this file name", fn)
		}
		m[fn] = rec
	}
	return r, nil
}
