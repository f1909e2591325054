package repodata

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/sync/errgroup"

	"github.com/sparkenv/sparkenv/internal/fsutil"
)

// Names of the sharded index (CEP 16) inside a subdir.
const (
	ShardIndexFile = "repodata_shards.msgpack.zst"
	// ShardsDir is where WriteShards puts the shards, and the
	// shards_base_url it writes is "./" + ShardsDir + "/".
	ShardsDir = "shards"
)

// ShardIndex is repodata_shards.msgpack.zst: the sha256 of each package
// name's shard file.
type ShardIndex struct {
	Version int
	Info    ShardInfo
	Shards  map[string][32]byte
}

// ShardInfo is the index's "info". BaseURL (where packages are) and
// ShardsBaseURL (where shards are) may be relative to the index's URL.
type ShardInfo struct {
	Subdir        string
	BaseURL       string
	ShardsBaseURL string
	CreatedAt     time.Time
}

// Shard holds the records of one package name.
type Shard struct {
	Packages      map[string]Record
	PackagesConda map[string]Record
	Removed       []string
}

// ShardFileName is the file name of the shard whose compressed bytes have
// the given sha256: the lower-case hex digest plus ".msgpack.zst".
func ShardFileName(sum [32]byte) string {
	return hex.EncodeToString(sum[:]) + ".msgpack.zst"
}

// ParseShardIndex reads repodata_shards.msgpack.zst (compressed). Unknown
// keys are ignored; a hash that is not 32 bytes is an error.
func ParseShardIndex(data []byte) (*ShardIndex, error) {
	plain, err := Decompress(data)
	if err != nil {
		return nil, fmt.Errorf("shard index: %w", err)
	}
	ix, err := parseShardIndex(plain)
	if err != nil {
		return nil, fmt.Errorf("shard index: %w", err)
	}
	return ix, nil
}

func parseShardIndex(b []byte) (*ShardIndex, error) {
	r := &mpReader{b: b}
	ix := &ShardIndex{Shards: map[string][32]byte{}}
	n, err := r.mapLen()
	if err != nil {
		return nil, err
	}
	for range n {
		key, err := r.str()
		if err != nil {
			return nil, err
		}
		switch key {
		case "version":
			if r.isNil() {
				continue
			}
			v, err := r.integer()
			if err != nil {
				return nil, fmt.Errorf("version: %w", err)
			}
			ix.Version = int(v)
		case "info":
			if err := readShardInfo(r, &ix.Info); err != nil {
				return nil, fmt.Errorf("info: %w", err)
			}
		case "shards":
			if r.isNil() {
				continue
			}
			m, err := r.mapLen()
			if err != nil {
				return nil, fmt.Errorf("shards: %w", err)
			}
			for range m {
				name, err := r.str()
				if err != nil {
					return nil, fmt.Errorf("shards: %w", err)
				}
				h, err := r.rawString()
				if err != nil {
					return nil, fmt.Errorf("shards: %s: %w", name, err)
				}
				sum, err := digest(h, 32)
				if err != nil {
					return nil, fmt.Errorf("shards: %s: %w", name, err)
				}
				var a [32]byte
				copy(a[:], sum)
				ix.Shards[name] = a
			}
		default:
			if err := r.skip(); err != nil {
				return nil, err
			}
		}
	}
	return ix, nil
}

func readShardInfo(r *mpReader, info *ShardInfo) error {
	if r.isNil() {
		return nil
	}
	n, err := r.mapLen()
	if err != nil {
		return err
	}
	for range n {
		key, err := r.str()
		if err != nil {
			return err
		}
		var dst *string
		switch key {
		case "subdir":
			dst = &info.Subdir
		case "base_url":
			dst = &info.BaseURL
		case "shards_base_url":
			dst = &info.ShardsBaseURL
		case "created_at":
			if k, _ := r.nextKind(); k == mpStr {
				s, err := r.str()
				if err != nil {
					return err
				}
				// an unreadable time is metadata only: leave it zero
				info.CreatedAt, _ = time.Parse(time.RFC3339Nano, s)
				continue
			}
		}
		if dst == nil {
			if err := r.skip(); err != nil {
				return err
			}
			continue
		}
		if *dst, err = r.scalar(); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

// digest takes a hash given as raw bytes (the CEP 16 form) or as hex.
func digest(b []byte, size int) ([]byte, error) {
	switch len(b) {
	case size:
		return b, nil
	case 2 * size:
		if d, err := hex.DecodeString(string(b)); err == nil {
			return d, nil
		}
	}
	return nil, fmt.Errorf("want a %d-byte hash, got %d bytes", size, len(b))
}

// ParseShard reads one shard file (compressed).
func ParseShard(data []byte) (*Shard, error) {
	plain, err := Decompress(data)
	if err != nil {
		return nil, fmt.Errorf("shard: %w", err)
	}
	s, err := parseShard(plain)
	if err != nil {
		return nil, fmt.Errorf("shard: %w", err)
	}
	return s, nil
}

func parseShard(b []byte) (*Shard, error) {
	r := &mpReader{b: b}
	s := &Shard{Packages: map[string]Record{}, PackagesConda: map[string]Record{}}
	n, err := r.mapLen()
	if err != nil {
		return nil, err
	}
	for range n {
		key, err := r.str()
		if err != nil {
			return nil, err
		}
		var dst map[string]Record
		switch key {
		case "packages":
			dst = s.Packages
		case "packages.conda":
			dst = s.PackagesConda
		case "removed":
			if s.Removed, err = r.strList(); err != nil {
				return nil, fmt.Errorf("removed: %w", err)
			}
			continue
		default:
			if err := r.skip(); err != nil {
				return nil, err
			}
			continue
		}
		if r.isNil() {
			continue
		}
		m, err := r.mapLen()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		for range m {
			fn, err := r.str()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			rec, err := readRecord(r)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", key, fn, err)
			}
			rec.FileName = fn
			dst[fn] = rec
		}
	}
	return s, nil
}

// readRecord reads a record with the same leniency as Record.UnmarshalJSON.
func readRecord(r *mpReader) (Record, error) {
	var rec Record
	n, err := r.mapLen()
	if err != nil {
		return rec, err
	}
	for range n {
		key, err := r.str()
		if err != nil {
			return rec, err
		}
		if err := readField(r, &rec, key); err != nil {
			return rec, fmt.Errorf("%s: %w", key, err)
		}
	}
	if rec.Depends == nil {
		rec.Depends = []string{}
	}
	if rec.Timestamp > 0 && rec.Timestamp <= millisecondsAbove {
		rec.Timestamp *= 1000
	}
	return rec, nil
}

func readField(r *mpReader, rec *Record, key string) error {
	var err error
	str := func(dst *string) error {
		*dst, err = r.scalar()
		return err
	}
	num := func(dst *int64) error {
		if r.isNil() {
			return nil
		}
		*dst, err = r.integer()
		return err
	}
	hash := func(dst *string, size int) error {
		if r.isNil() {
			return nil
		}
		b, err := r.rawString()
		if err != nil {
			return err
		}
		d, err := digest(b, size)
		if err != nil {
			return err
		}
		*dst = hex.EncodeToString(d)
		return nil
	}
	features := func(dst *string) error {
		if k, _ := r.nextKind(); k == mpArray {
			list, err := r.strList()
			*dst = strings.Join(list, " ")
			return err
		}
		if err := str(dst); err != nil {
			return err
		}
		*dst = strings.TrimSpace(*dst)
		return nil
	}
	switch key {
	case "name":
		return str(&rec.Name)
	case "version":
		return str(&rec.Version)
	case "build":
		return str(&rec.Build)
	case "build_number":
		return num(&rec.BuildNumber)
	case "depends":
		rec.Depends, err = r.strList()
		return err
	case "constrains":
		rec.Constrains, err = r.strList()
		return err
	case "license":
		return str(&rec.License)
	case "license_family":
		return str(&rec.LicenseFamily)
	case "md5":
		return hash(&rec.MD5, 16)
	case "sha256":
		return hash(&rec.SHA256, 32)
	case "size":
		return num(&rec.Size)
	case "subdir":
		return str(&rec.Subdir)
	case "timestamp":
		return num(&rec.Timestamp)
	case "track_features":
		return features(&rec.TrackFeatures)
	case "features":
		return features(&rec.Features)
	case "python_site_packages_path":
		return str(&rec.PythonSitePackagesPath)
	case "noarch":
		if c, err := r.peek(); err == nil && (c == 0xc2 || c == 0xc3) {
			r.pos++
			if c == 0xc3 {
				rec.Noarch = "generic" // old-style `noarch: true`
			}
			return nil
		}
		return str(&rec.Noarch)
	}
	return r.skip()
}

// Records returns the shard's records ordered by file name.
func (s *Shard) Records() []Record {
	rd := Repodata{Packages: s.Packages, PackagesConda: s.PackagesConda}
	return rd.Records()
}

// FromShards joins an index and its shards into one Repodata, as if it had
// been read from repodata.json. Records without a subdir get the index's.
func FromShards(ix *ShardIndex, shards []*Shard) *Repodata {
	r := &Repodata{
		Info:            Info{Subdir: ix.Info.Subdir, BaseURL: ix.Info.BaseURL},
		Packages:        map[string]Record{},
		PackagesConda:   map[string]Record{},
		RepodataVersion: 2,
	}
	for _, s := range shards {
		for k, rec := range s.Packages {
			if rec.Subdir == "" {
				rec.Subdir = ix.Info.Subdir
			}
			r.Packages[k] = rec
		}
		for k, rec := range s.PackagesConda {
			if rec.Subdir == "" {
				rec.Subdir = ix.Info.Subdir
			}
			r.PackagesConda[k] = rec
		}
		r.Removed = append(r.Removed, s.Removed...)
	}
	sort.Strings(r.Removed)
	return r
}

// WriteShards writes the CEP 16 form of a subdir: each package name's shard
// under <dir>/<subdir>/shards/<sha256>.msgpack.zst, where the sha256 is that
// of the compressed file, then the index <dir>/<subdir>/repodata_shards.msgpack.zst
// (last, so a reader never sees an index naming a shard not yet written).
// Older shards are left in place: clients holding the previous index still
// need them. Output is deterministic: maps are written with sorted keys and
// compressed at a fixed level.
func WriteShards(dir, subdir string, records []Record, opts WriteOptions) error {
	rd, err := FromRecords(subdir, records)
	if err != nil {
		return err
	}
	type group struct {
		packages, conda []string
		removed         []string
	}
	groups := map[string]*group{}
	get := func(name string) *group {
		g := groups[name]
		if g == nil {
			g = &group{}
			groups[name] = g
		}
		return g
	}
	for fn, rec := range rd.Packages {
		if err := checkRecord(fn, subdir, &rec); err != nil {
			return err
		}
		get(rec.Name).packages = append(get(rec.Name).packages, fn)
	}
	for fn, rec := range rd.PackagesConda {
		if err := checkRecord(fn, subdir, &rec); err != nil {
			return err
		}
		get(rec.Name).conda = append(get(rec.Name).conda, fn)
	}
	for _, fn := range opts.Removed {
		if name := nameOfFile(fn); name != "" {
			get(name).removed = append(get(name).removed, fn)
		}
	}
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)

	out := filepath.Join(dir, subdir)
	shardDir := filepath.Join(out, ShardsDir)
	if err := os.MkdirAll(shardDir, 0o755); err != nil {
		return fmt.Errorf("shards: %w", err)
	}
	sums := make([][32]byte, len(names))
	var g errgroup.Group
	// fsync latency, not CPU, bounds writing thousands of small files
	g.SetLimit(8)
	for i, name := range names {
		g.Go(func() error {
			grp := groups[name]
			var buf bytes.Buffer
			enc := msgpack.NewEncoder(&buf)
			enc.UseCompactInts(true)
			e := &mpWriter{enc: enc}
			e.mapLen(3)
			e.str("packages")
			e.records(rd.Packages, grp.packages, subdir)
			e.str("packages.conda")
			e.records(rd.PackagesConda, grp.conda, subdir)
			e.str("removed")
			sort.Strings(grp.removed)
			e.strList(grp.removed)
			if e.err != nil {
				return fmt.Errorf("shard %s: %w", name, e.err)
			}
			data := Compress(buf.Bytes())
			sums[i] = sha256.Sum256(data)
			if err := writeShardFile(filepath.Join(shardDir, ShardFileName(sums[i])), data); err != nil {
				return fmt.Errorf("shard %s: %w", name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := fsutil.SyncDir(shardDir); err != nil {
		return fmt.Errorf("shards: %w", err)
	}

	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	e := &mpWriter{enc: enc}
	e.mapLen(3)
	e.str("info")
	fields := 3
	if !opts.CreatedAt.IsZero() {
		fields++
	}
	e.mapLen(fields)
	base := opts.BaseURL
	if base == "" {
		base = "./"
	}
	e.str("base_url")
	e.str(base)
	if !opts.CreatedAt.IsZero() {
		e.str("created_at")
		e.str(opts.CreatedAt.UTC().Format(time.RFC3339Nano))
	}
	e.str("shards_base_url")
	e.str("./" + ShardsDir + "/")
	e.str("subdir")
	e.str(subdir)
	e.str("shards")
	e.mapLen(len(names))
	for i, name := range names {
		e.str(name)
		e.bin(sums[i][:])
	}
	e.str("version")
	e.int(1)
	if e.err != nil {
		return fmt.Errorf("shard index: %w", e.err)
	}
	if err := fsutil.WriteFile(filepath.Join(out, ShardIndexFile), Compress(buf.Bytes()), 0o644); err != nil {
		return fmt.Errorf("shard index: %w", err)
	}
	return nil
}

// nameOfFile is the package name in a file name name-version-build.ext.
func nameOfFile(fn string) string {
	stem := Stem(fn)
	for range 2 {
		i := strings.LastIndexByte(stem, '-')
		if i <= 0 {
			return ""
		}
		stem = stem[:i]
	}
	return stem
}

// mpWriter keeps the first encoding error so that call sites stay flat.
type mpWriter struct {
	enc *msgpack.Encoder
	err error
}

func (w *mpWriter) do(f func() error) {
	if w.err == nil {
		w.err = f()
	}
}

func (w *mpWriter) mapLen(n int) { w.do(func() error { return w.enc.EncodeMapLen(n) }) }
func (w *mpWriter) str(s string) { w.do(func() error { return w.enc.EncodeString(s) }) }
func (w *mpWriter) bin(b []byte) { w.do(func() error { return w.enc.EncodeBytes(b) }) }
func (w *mpWriter) int(n int64)  { w.do(func() error { return w.enc.EncodeInt(n) }) }
func (w *mpWriter) strList(l []string) {
	w.do(func() error { return w.enc.EncodeArrayLen(len(l)) })
	for _, s := range l {
		w.str(s)
	}
}

func (w *mpWriter) records(all map[string]Record, fns []string, subdir string) {
	sort.Strings(fns)
	w.mapLen(len(fns))
	for _, fn := range fns {
		rec := all[fn]
		w.str(fn)
		w.record(&rec, subdir)
	}
}

// record writes the keys of one record in sorted order, hashes as raw bytes.
func (w *mpWriter) record(r *Record, subdir string) {
	type kv struct {
		k string
		v func()
	}
	var fields []kv
	add := func(k string, v func()) { fields = append(fields, kv{k, v}) }
	optStr := func(k, v string) {
		if v != "" {
			add(k, func() { w.str(v) })
		}
	}
	add("build", func() { w.str(r.Build) })
	add("build_number", func() { w.int(r.BuildNumber) })
	if len(r.Constrains) > 0 {
		add("constrains", func() { w.strList(r.Constrains) })
	}
	add("depends", func() { w.strList(r.Depends) })
	optStr("features", strings.TrimSpace(r.Features))
	optStr("license", r.License)
	optStr("license_family", r.LicenseFamily)
	if r.MD5 != "" {
		b, _ := hex.DecodeString(r.MD5) // checked by checkRecord
		add("md5", func() { w.bin(b) })
	}
	add("name", func() { w.str(r.Name) })
	optStr("noarch", r.Noarch)
	optStr("python_site_packages_path", r.PythonSitePackagesPath)
	if r.SHA256 != "" {
		b, _ := hex.DecodeString(r.SHA256)
		add("sha256", func() { w.bin(b) })
	}
	if r.Size != 0 {
		add("size", func() { w.int(r.Size) })
	}
	add("subdir", func() { w.str(subdir) })
	if r.Timestamp != 0 {
		add("timestamp", func() { w.int(r.Timestamp) })
	}
	optStr("track_features", strings.TrimSpace(r.TrackFeatures))
	add("version", func() { w.str(r.Version) })
	w.mapLen(len(fields))
	for _, f := range fields {
		w.str(f.k)
		f.v()
	}
}

// writeShardFile writes a content-addressed file: temp file, fsync, rename;
// the directory is synced once by the caller. A file already there has the
// same content by construction and is left alone.
func writeShardFile(path string, data []byte) (err error) {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".shard-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
