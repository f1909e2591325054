package repodata

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"

	"github.com/sparkenv/sparkenv/internal/fsutil"
)

// WriteOptions says which forms of the index Write produces.
type WriteOptions struct {
	// Zst also writes repodata.json.zst, which modern clients fetch first.
	Zst bool
	// Shards also writes the CEP 16 sharded index (WriteShards).
	Shards bool
	// BaseURL is written as info.base_url (CEP 15) when the package files do
	// not sit beside repodata.json; it makes repodata_version 2.
	BaseURL string
	// Removed lists file names withdrawn from the channel.
	Removed []string
	// CreatedAt is the shard index's created_at. Zero leaves it out, which
	// keeps the output a pure function of the records.
	CreatedAt time.Time
}

// Write writes <dir>/<subdir>/repodata.json, and, as opts asks,
// repodata.json.zst and the sharded index, each atomically.
//
// The JSON is written strictly and deterministically: keys sorted, two-space
// indentation (the layout conda-index uses, readable and diffable; the .zst
// form removes the size cost), "depends" always a list, no "fn", "url" or
// "channel" keys, timestamps in milliseconds. Records must name their files
// and belong to subdir.
func Write(dir, subdir string, records []Record, opts WriteOptions) error {
	r, err := FromRecords(subdir, records)
	if err != nil {
		return err
	}
	r.Info.BaseURL = opts.BaseURL
	r.Removed = opts.Removed
	data, err := Marshal(r)
	if err != nil {
		return err
	}
	out := filepath.Join(dir, subdir)
	if err := fsutil.WriteFile(filepath.Join(out, "repodata.json"), data, 0o644); err != nil {
		return fmt.Errorf("repodata: %w", err)
	}
	if opts.Zst {
		if err := fsutil.WriteFile(filepath.Join(out, "repodata.json.zst"), Compress(data), 0o644); err != nil {
			return fmt.Errorf("repodata: %w", err)
		}
	} else if err := removeStale(filepath.Join(out, "repodata.json.zst")); err != nil {
		return err
	}
	if opts.Shards {
		return WriteShards(dir, subdir, records, opts)
	}
	return removeStale(filepath.Join(out, ShardIndexFile))
}

// removeStale deletes an index form an earlier write produced and this one
// does not: clients read .zst and shards before repodata.json, so a stale
// one would hide the new index.
func removeStale(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("repodata: %w", err)
	}
	return nil
}

// WriteChannel writes a whole channel under root: each subdir's index
// (records grouped by their Subdir, which must be set), an empty noarch
// index when no record is noarch (clients require one), and
// channeldata.json.
func WriteChannel(root string, records []Record, opts WriteOptions) error {
	bySubdir := map[string][]Record{"noarch": nil}
	for _, r := range records {
		if r.Subdir == "" {
			return fmt.Errorf("repodata: %s: record has no subdir", r.FileName)
		}
		bySubdir[r.Subdir] = append(bySubdir[r.Subdir], r)
	}
	subdirs := make([]string, 0, len(bySubdir))
	for sd := range bySubdir {
		subdirs = append(subdirs, sd)
	}
	sort.Strings(subdirs)
	for _, sd := range subdirs {
		if strings.ContainsAny(sd, `/\`) || sd == "." || sd == ".." {
			return fmt.Errorf("repodata: %q is not a subdir name", sd)
		}
		if err := Write(root, sd, bySubdir[sd], opts); err != nil {
			return err
		}
	}
	return WriteChanneldata(root, records, ChanneldataOptions{Subdirs: subdirs})
}

var (
	encoderOnce sync.Once
	encoder     *zstd.Encoder
)

// Compress zstd-compresses data at a fixed level, so identical input gives
// identical output.
func Compress(data []byte) []byte {
	encoderOnce.Do(func() {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
		if err != nil {
			panic(err) // only invalid options make NewWriter fail
		}
		encoder = e
	})
	return encoder.EncodeAll(data, make([]byte, 0, len(data)/4))
}

// Marshal encodes r as repodata.json in the strict form Write describes.
// repodata_version is 2 when info.base_url is set, else 1.
func Marshal(r *Repodata) ([]byte, error) {
	subdir := r.Info.Subdir
	if subdir == "" {
		return nil, fmt.Errorf("repodata: info.subdir is empty")
	}
	var w jsonWriter
	w.open('{')
	w.key("info")
	w.open('{')
	if r.Info.BaseURL != "" {
		w.key("base_url")
		w.str(r.Info.BaseURL)
	}
	w.key("subdir")
	w.str(subdir)
	w.close('}')
	for _, part := range []struct {
		key  string
		recs map[string]Record
		ext  string
	}{{"packages", r.Packages, ExtTarBz2}, {"packages.conda", r.PackagesConda, ExtConda}} {
		w.key(part.key)
		w.open('{')
		names := make([]string, 0, len(part.recs))
		for fn := range part.recs {
			names = append(names, fn)
		}
		sort.Strings(names)
		for _, fn := range names {
			rec := part.recs[fn]
			if !strings.HasSuffix(fn, part.ext) {
				return nil, fmt.Errorf("repodata: %s: a file in %q must end in %s", fn, part.key, part.ext)
			}
			if err := checkRecord(fn, subdir, &rec); err != nil {
				return nil, err
			}
			w.key(fn)
			writeRecord(&w, &rec, subdir)
		}
		w.close('}')
	}
	w.key("removed")
	removed := slices.Clone(r.Removed)
	sort.Strings(removed)
	removed = slices.Compact(removed)
	w.strList(removed)
	w.key("repodata_version")
	version := 1
	if r.Info.BaseURL != "" {
		version = 2
	}
	w.num(int64(version))
	w.close('}')
	w.buf = append(w.buf, '\n')
	return w.buf, nil
}

// checkRecord rejects what a strict writer must not emit.
func checkRecord(fn, subdir string, r *Record) error {
	switch {
	case r.Name == "":
		return fmt.Errorf("repodata: %s: record has no name", fn)
	case r.Version == "":
		return fmt.Errorf("repodata: %s: record has no version", fn)
	case r.Build == "":
		return fmt.Errorf("repodata: %s: record has no build string", fn)
	case r.Subdir != "" && r.Subdir != subdir:
		return fmt.Errorf("repodata: %s: record of subdir %s written into %s", fn, r.Subdir, subdir)
	case strings.ContainsAny(fn, "/\\"):
		return fmt.Errorf("repodata: %s: a file name must not contain a path separator", fn)
	}
	if r.MD5 != "" && !isHex(r.MD5, 16) {
		return fmt.Errorf("repodata: %s: md5 %q is not 32 hex digits", fn, r.MD5)
	}
	if r.SHA256 != "" && !isHex(r.SHA256, 32) {
		return fmt.Errorf("repodata: %s: sha256 %q is not 64 hex digits", fn, r.SHA256)
	}
	return nil
}

func isHex(s string, n int) bool {
	if len(s) != 2*n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// writeRecord writes the keys of one record in sorted order.
func writeRecord(w *jsonWriter, r *Record, subdir string) {
	w.open('{')
	w.key("build")
	w.str(r.Build)
	w.key("build_number")
	w.num(r.BuildNumber)
	if len(r.Constrains) > 0 {
		w.key("constrains")
		w.strList(r.Constrains)
	}
	w.key("depends")
	w.strList(r.Depends)
	optStr := func(k, v string) {
		if v != "" {
			w.key(k)
			w.str(v)
		}
	}
	optStr("features", strings.TrimSpace(r.Features))
	optStr("license", r.License)
	optStr("license_family", r.LicenseFamily)
	optStr("md5", strings.ToLower(r.MD5))
	w.key("name")
	w.str(r.Name)
	optStr("noarch", r.Noarch)
	optStr("python_site_packages_path", r.PythonSitePackagesPath)
	optStr("sha256", strings.ToLower(r.SHA256))
	if r.Size != 0 {
		w.key("size")
		w.num(r.Size)
	}
	w.key("subdir")
	w.str(subdir)
	if r.Timestamp != 0 {
		w.key("timestamp")
		w.num(r.Timestamp)
	}
	optStr("track_features", strings.TrimSpace(r.TrackFeatures))
	w.key("version")
	w.str(r.Version)
	w.close('}')
}

// jsonWriter writes indented JSON by hand: the field order and layout are
// part of the output's identity, so nothing is left to reflection.
type jsonWriter struct {
	buf   []byte
	depth int
	first bool // no element written yet in the open container
}

func (w *jsonWriter) newline() {
	w.buf = append(w.buf, '\n')
	for range w.depth {
		w.buf = append(w.buf, ' ', ' ')
	}
}

func (w *jsonWriter) elem() {
	if !w.first {
		w.buf = append(w.buf, ',')
	}
	w.first = false
	w.newline()
}

func (w *jsonWriter) open(c byte) {
	w.buf = append(w.buf, c)
	w.depth++
	w.first = true
}

func (w *jsonWriter) close(c byte) {
	w.depth--
	if !w.first {
		w.newline()
	}
	w.buf = append(w.buf, c)
	w.first = false
}

func (w *jsonWriter) key(k string) {
	w.elem()
	w.buf = appendString(w.buf, k)
	w.buf = append(w.buf, ':', ' ')
	// the value follows on the same line; it must not add a comma
	w.first = true
}

func (w *jsonWriter) str(s string) {
	w.buf = appendString(w.buf, s)
	w.first = false
}

func (w *jsonWriter) num(n int64) {
	w.buf = strconv.AppendInt(w.buf, n, 10)
	w.first = false
}

func (w *jsonWriter) strList(list []string) {
	w.open('[')
	for _, s := range list {
		w.elem()
		w.buf = appendString(w.buf, s)
	}
	w.close(']')
}

// appendString quotes s as a JSON string. Unlike encoding/json it leaves <,
// > and & alone (version constraints are full of them); invalid UTF-8 becomes
// U+FFFD, and U+2028/U+2029 are escaped for JavaScript readers.
func appendString(buf []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				buf = append(buf, '\\', c)
			case c == '\n':
				buf = append(buf, '\\', 'n')
			case c == '\r':
				buf = append(buf, '\\', 'r')
			case c == '\t':
				buf = append(buf, '\\', 't')
			case c < 0x20:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				buf = append(buf, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			buf = append(buf, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			buf = append(buf, s[i:i+size]...)
		}
		i += size
	}
	return append(buf, '"')
}
