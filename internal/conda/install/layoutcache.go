package install

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/sparkenv/sparkenv/internal/conda/pkg"
	"github.com/sparkenv/sparkenv/internal/fsutil"
)

// The layout cache keeps one package's part of a Layout for one target
// prefix: every path the package lists, after noarch mapping, with its
// type, mode, link target, hashes and size, and the files Layout had to
// write for it (patched files, entry points, files whose packaged mode was
// not normalised). A later Layout of an environment holding the package
// reads that record instead of info/paths.json and a stat of every file.
//
// An entry is <cache>/<key[:2]>/<key>/ with a file "record" and the
// written files as files/<n> (n: the path's index in the record). It is
// made in a temporary directory, made durable and renamed into place. Its
// record ends with the sha256 of what precedes it, and the files it keeps
// are checked for size and mode, so a damaged entry is seen and made
// again. The key covers everything a package's part depends on besides
// the package itself: the target prefix, the package's lock record, the
// python package (noarch: python paths and entry points follow its
// version) and whether files are hardlinked.

// layoutCacheVersion names the record format and the way a package's part
// is made; changing either must change it.
const layoutCacheVersion = "sparkenv-layout-1"

// metaCacheVersion names the way conda-meta records are written; a
// change to prefixRecord or encodeJSON must change it.
const metaCacheVersion = "sparkenv-meta-1"

const recordMagic = "sparkenv layout record\n"

// cacheKeys returns the layout cache key of every package, or nil when the
// cache is off or a package is not identified well enough to be cached.
func (in *installer) cacheKeys(pkgs []Package) []string {
	if !in.virtual || in.opts.LayoutCache == "" {
		return nil
	}
	// A package's record in the lock may override its index.json (noarch,
	// python_site_packages_path), and the size of a hardlinked file is the
	// one paths.json gives: both are part of the key, with the python
	// package, whose version places noarch: python files.
	ids := make([]string, len(pkgs))
	var python string
	for i, p := range pkgs {
		id, ok := packageID(p)
		if !ok {
			return nil
		}
		rec, err := json.Marshal(p.Record)
		if err != nil {
			return nil
		}
		ids[i] = id + "\x00" + string(rec)
		if p.Record.Name == "python" {
			python = ids[i]
		}
	}
	keys := make([]string, len(pkgs))
	for i := range pkgs {
		h := sha256.New()
		fmt.Fprintf(h, "%s\x00%s\x00%t\x00%s\x00%s", layoutCacheVersion, in.prefix, in.opts.AllowHardlinks, ids[i], python)
		keys[i] = hex.EncodeToString(h.Sum(nil))
	}
	return keys
}

// packageID names an extracted package: its directory (whose files and
// their modes the record refers to) and the archive's digest.
func packageID(p Package) (string, bool) {
	sum := p.Record.SHA256
	if sum == "" {
		sum = p.Record.MD5
	}
	dir, err := filepath.Abs(p.Dir)
	if sum == "" || err != nil || p.Record.Name == "" {
		return "", false
	}
	return dir + "\x00" + sum, true
}

func (in *installer) cacheEntry(key string) string {
	return filepath.Join(in.opts.LayoutCache, key[:2], key)
}

// recordHeader is the part of a record read from info/.
type recordHeader struct {
	Index       json.RawMessage `json:"index"`
	NoarchType  string          `json:"noarch_type,omitempty"`
	EntryPoints []string        `json:"entry_points,omitempty"`
}

// item flags in a record.
const (
	flagInPackage  = 1 << iota // the bytes are the package's file (source is relative to it)
	flagNoLink                 // paths.json no_link
	flagSameSHA                // sha256 == entry.SHA256
	flagSameInPfx              // sha256InPrefix == sha256
	flagSameDest               // dest == entry.Path
	flagSameSource             // source == entry.Path (with flagInPackage)
	flagHasSHA256              // the item has a sha256 of its own (entry.SHA256 may be empty)
)

// readRecord reads the cached part of a package, or returns false when
// there is none or it is damaged.
func readRecord(entry, pkgDir string) (*pkgInfo, []item, bool) {
	b, err := os.ReadFile(filepath.Join(entry, "record"))
	if err != nil || len(b) < len(recordMagic)+sha256.Size {
		return nil, nil, false
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if s := sha256.Sum256(body); string(s[:]) != string(sum) || !strings.HasPrefix(string(body), recordMagic) {
		return nil, nil, false
	}
	files := filepath.Join(entry, "files") + string(filepath.Separator)
	// The strings of the items share the record's bytes, which nothing
	// writes to after this.
	rest := body[len(recordMagic):]
	info, items, err := decodeRecord(unsafe.String(unsafe.SliceData(rest), len(rest)), files, pkgDir+string(filepath.Separator))
	if err != nil {
		return nil, nil, false
	}
	// The files the entry holds must all be there, whole and with their
	// modes (an image takes the mode of the file it names). Of the
	// package's own files, the first one is looked at: a package cache
	// copied or restored with other modes shows in any of them, and the
	// package is then laid out again from its files.
	spotted := false
	for i := range items {
		it := &items[i]
		own := strings.HasPrefix(it.source, files)
		if !own && (!it.shared || spotted) {
			continue
		}
		spotted = spotted || !own
		fi, err := os.Lstat(it.source)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != it.mode || own && fi.Size() != it.sizeInPrefix {
			return nil, nil, false
		}
	}
	return info, items, true
}

// decodeRecord decodes the body of a record; files is the entry's files/
// and pkgDir the package directory, each with a trailing separator.
func decodeRecord(s, files, pkgDir string) (info *pkgInfo, items []item, err error) {
	r := &recReader{s: s}
	var h recordHeader
	if err := json.Unmarshal([]byte(r.str()), &h); err != nil {
		return nil, nil, err
	}
	info = &pkgInfo{NoarchType: h.NoarchType, EntryPoints: h.EntryPoints}
	if err := json.Unmarshal(h.Index, &info.Index); err != nil {
		return nil, nil, err
	}
	n := r.num()
	if r.err != nil || n > uint64(len(s)) {
		return nil, nil, errors.New("bad record")
	}
	items = make([]item, n)
	for i := range items {
		it := &items[i]
		it.kind = itemKind(r.num())
		it.method = method(r.num())
		flags := r.num()
		it.mode = fs.FileMode(r.num())
		it.entry.Size = int64(r.num())
		it.sizeInPrefix = int64(r.num())
		it.entry.Path = r.str()
		it.entry.PathType = pkg.PathType(r.str())
		it.entry.FileMode = pkg.FileMode(r.str())
		it.entry.PrefixPlaceholder = r.str()
		it.entry.SHA256 = r.str()
		it.entry.NoLink = flags&flagNoLink != 0
		it.target = r.str()
		switch {
		case flags&flagSameDest != 0:
			it.dest = it.entry.Path
		default:
			it.dest = r.str()
		}
		switch {
		case flags&flagSameSHA != 0:
			it.sha256 = it.entry.SHA256
		case flags&flagHasSHA256 != 0:
			it.sha256 = r.str()
		}
		switch {
		case flags&flagSameInPfx != 0:
			it.sha256InPrefix = it.sha256
		default:
			it.sha256InPrefix = r.str()
		}
		switch {
		case flags&flagInPackage != 0 && flags&flagSameSource != 0:
			it.source = pkgDir + filepath.FromSlash(it.entry.Path)
		case flags&flagInPackage != 0:
			it.source = pkgDir + filepath.FromSlash(r.str())
		case it.method != methodNone && it.method != methodSymlink:
			it.source = files + strconv.Itoa(i)
		}
		it.shared = flags&flagInPackage != 0
		if r.err != nil {
			return nil, nil, r.err
		}
	}
	if r.i != len(r.s) {
		return nil, nil, errors.New("bad record: trailing bytes")
	}
	return info, items, nil
}

// recReader reads uvarints and length-prefixed strings; the strings share
// the record's memory.
type recReader struct {
	s   string
	i   int
	err error
}

func (r *recReader) num() uint64 {
	var x uint64
	for shift := 0; shift < 64; shift += 7 {
		if r.i >= len(r.s) {
			r.err = errors.New("bad record: truncated")
			return 0
		}
		c := r.s[r.i]
		r.i++
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x
		}
	}
	r.err = errors.New("bad record: number too long")
	return 0
}

func (r *recReader) str() string {
	n := r.num()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.s)-r.i) {
		r.err = errors.New("bad record: truncated")
		return ""
	}
	s := r.s[r.i : r.i+int(n)]
	r.i += int(n)
	return s
}

// storeRecords puts the part of every package that was not read from the
// cache into it. A package is stored only when every path it lists was
// written by this layout (none lost to a later package). The entries are
// written, made durable with one sync of the file system, then renamed
// into place. Failing to store is not an error of the layout: the tree is
// complete either way.
func (in *installer) storeRecords(keys []string) {
	if keys == nil {
		return
	}
	tmps := make([]string, len(in.pkgs))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for pi, ps := range in.pkgs {
		if ps.cached != nil {
			continue
		}
		g.Go(func() error {
			tmp, err := in.writeRecord(ps, keys[pi])
			if err != nil {
				in.logf("warning: layout cache: package %s: %v", ps.dist, err)
			}
			tmps[pi] = tmp
			return nil
		})
	}
	g.Wait()
	stored := false
	for _, tmp := range tmps {
		stored = stored || tmp != ""
	}
	if !stored {
		return
	}
	if err := syncFS(in.opts.LayoutCache); err != nil {
		in.logf("warning: layout cache: %v", err)
		for _, tmp := range tmps {
			if tmp != "" {
				os.RemoveAll(tmp)
			}
		}
		return
	}
	for pi, tmp := range tmps {
		if tmp == "" {
			continue
		}
		if err := publishRecord(tmp, in.cacheEntry(keys[pi]), filepath.Clean(in.pkgs[pi].pkg.Dir)); err != nil {
			in.logf("warning: layout cache: package %s: %v", in.pkgs[pi].dist, err)
		}
	}
}

// syncFS flushes the file system holding dir.
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// publishRecord renames a written entry into place. An entry already
// there that reads well is kept (another build stored the same one, and
// may be reading it); a damaged one is replaced.
func publishRecord(tmp, final, pkgDir string) error {
	defer os.RemoveAll(tmp)
	parent := filepath.Dir(final)
	if _, err := os.Lstat(final); err == nil {
		if _, _, ok := readRecord(final, pkgDir); ok {
			return nil
		}
		old, err := os.MkdirTemp(parent, ".old-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(old)
		if err := os.Rename(final, filepath.Join(old, "entry")); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		if _, serr := os.Lstat(filepath.Join(final, "record")); serr == nil {
			return nil // another build stored it first
		}
		return err
	}
	return fsutil.SyncDir(parent)
}

// writeRecord writes a package's entry in a temporary directory of the
// cache and returns it, or "" when the package is not to be stored.
func (in *installer) writeRecord(ps *pkgState, key string) (string, error) {
	for _, it := range ps.items {
		if it.kind != kindDir && it.method == methodNone {
			return "", nil // some path of it was not written here
		}
	}
	raw, err := os.ReadFile(filepath.Join(ps.pkg.Dir, "info", "index.json"))
	if err != nil {
		return "", err
	}
	head, err := json.Marshal(recordHeader{Index: raw, NoarchType: ps.info.NoarchType, EntryPoints: ps.info.EntryPoints})
	if err != nil {
		return "", err
	}
	parent := filepath.Dir(in.cacheEntry(key))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	fsutil.RemoveStale(parent, ".tmp-", ".old-")
	tmp, err := os.MkdirTemp(parent, ".tmp-")
	if err != nil {
		return "", err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Mkdir(filepath.Join(tmp, "files"), 0o755); err != nil {
		return "", err
	}
	pkgDir := filepath.Clean(ps.pkg.Dir) + string(filepath.Separator)
	w := append([]byte(recordMagic), 0)[:len(recordMagic)]
	str := func(s string) {
		w = binary.AppendUvarint(w, uint64(len(s)))
		w = append(w, s...)
	}
	num := func(n uint64) { w = binary.AppendUvarint(w, n) }
	str(string(head))
	num(uint64(len(ps.items)))
	for i, it := range ps.items {
		var flags uint64
		rel, inPkg := strings.CutPrefix(it.source, pkgDir)
		if inPkg {
			flags |= flagInPackage
			if rel == filepath.FromSlash(it.entry.Path) {
				flags |= flagSameSource
			}
		} else if it.source != "" {
			// A file this layout wrote: the entry keeps its own copy.
			if err := fsutil.LinkOrCopy(it.source, filepath.Join(tmp, "files", strconv.Itoa(i)), it.mode); err != nil {
				return "", err
			}
		}
		if it.entry.NoLink {
			flags |= flagNoLink
		}
		if it.sha256 == it.entry.SHA256 {
			flags |= flagSameSHA
		} else if it.sha256 != "" {
			flags |= flagHasSHA256
		}
		if it.sha256InPrefix == it.sha256 {
			flags |= flagSameInPfx
		}
		if it.dest == it.entry.Path {
			flags |= flagSameDest
		}
		num(uint64(it.kind))
		num(uint64(it.method))
		num(flags)
		num(uint64(it.mode))
		num(uint64(it.entry.Size))
		num(uint64(it.sizeInPrefix))
		str(it.entry.Path)
		str(string(it.entry.PathType))
		str(string(it.entry.FileMode))
		str(it.entry.PrefixPlaceholder)
		str(it.entry.SHA256)
		str(it.target)
		if flags&flagSameDest == 0 {
			str(it.dest)
		}
		if flags&(flagSameSHA|flagHasSHA256) == flagHasSHA256 {
			str(it.sha256)
		}
		if flags&flagSameInPfx == 0 {
			str(it.sha256InPrefix)
		}
		if inPkg && flags&flagSameSource == 0 {
			str(filepath.ToSlash(rel))
		}
	}
	sum := sha256.Sum256(w)
	w = append(w, sum[:]...)
	if err := os.WriteFile(filepath.Join(tmp, "record"), w, 0o644); err != nil {
		return "", err
	}
	ok = true
	return tmp, nil
}
