package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/internal/fsutil"
)

// Store is the content-addressed store and action cache under the cache
// directory (.sparkenv/ by default):
//
//	objects/<ab>/<sha256>[.x]   file contents, read-only; .x for executables
//	actions/<ab>/<key>.json     key → manifest, metadata, pre-image
//	last/<sha256(address)>.json the last pre-image seen for an address
//	tmp/                        scratch, removed at the start of a build
//
// Objects are immutable once renamed into place. Each action record is
// written after every object it names, so a crash leaves either no record or
// a complete one.
type Store struct {
	Dir   string
	stats *statCache
}

// ActionRecord is what the action cache keeps for a key.
type ActionRecord struct {
	Key      string            `json:"key"`
	Address  string            `json:"address"` // provenance only
	Manifest artifact.Manifest `json:"manifest"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Output   string            `json:"output"` // output digest seen by dependents
	Preimage *Preimage         `json:"preimage"`
	// Receipt is kept for publish actions.
	Receipt json.RawMessage `json:"receipt,omitempty"`
}

// OpenStore opens (creating) the store at dir.
func OpenStore(dir string) (*Store, error) {
	for _, d := range []string{"objects", "actions", "last", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("open cache %s: %w", dir, err)
		}
	}
	s := &Store{Dir: dir}
	s.stats = loadStatCache(filepath.Join(dir, "statcache.json"))
	return s, nil
}

func (s *Store) objectPath(sum string, exec bool) string {
	p := filepath.Join(s.Dir, "objects", sum[:2], sum)
	if exec {
		p += ".x"
	}
	return p
}

func (s *Store) actionPath(key string) string {
	return filepath.Join(s.Dir, "actions", key[:2], key+".json")
}

func (s *Store) lastPath(address string) string {
	sum := sha256.Sum256([]byte(address))
	return filepath.Join(s.Dir, "last", hex.EncodeToString(sum[:])+".json")
}

// TempDir makes a fresh scratch directory.
func (s *Store) TempDir(pattern string) (string, error) {
	return os.MkdirTemp(filepath.Join(s.Dir, "tmp"), pattern)
}

// CleanTemp removes leftovers of interrupted builds. Call it only while
// holding the build lock.
func (s *Store) CleanTemp() error {
	tmp := filepath.Join(s.Dir, "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	return os.MkdirAll(tmp, 0o755)
}

// Lookup returns the action record of key when it exists and every object it
// names is intact. An object that fails its check is removed (and so is the
// record), so the action runs again: a corrupted store is never served.
func (s *Store) Lookup(key string) (*ActionRecord, bool) {
	if !validKey(key) {
		return nil, false
	}
	b, err := os.ReadFile(s.actionPath(key))
	if err != nil {
		return nil, false
	}
	var rec ActionRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.Key != key {
		os.Remove(s.actionPath(key))
		return nil, false
	}
	for _, f := range rec.Manifest.Files {
		ok, err := s.objectCheck(f)
		if ok {
			continue
		}
		// Only a missing or corrupted object is removed; an error reading
		// it (permissions, too many open files) just misses the cache.
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			os.Remove(s.objectPath(f.SHA256, f.Executable))
			os.Remove(s.actionPath(key))
		}
		return nil, false
	}
	return &rec, true
}

// validKey reports whether key looks like a sha256 in hex.
func validKey(key string) bool {
	if len(key) != 64 {
		return false
	}
	for _, c := range key {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// reloadStats reads the stat cache again: called once the build lock is
// held, so that it includes what a build that held the lock before wrote.
func (s *Store) reloadStats() {
	s.stats = loadStatCache(s.stats.path)
}

// objectOK checks an object: a stat that matches the one recorded when the
// object was last hashed is trusted (objects are read-only and immutable);
// anything else is hashed again.
func (s *Store) objectOK(f artifact.File) bool {
	ok, _ := s.objectCheck(f)
	return ok
}

// objectCheck says whether an object is present and intact; err is set
// when it could not be read.
func (s *Store) objectCheck(f artifact.File) (bool, error) {
	if !validKey(f.SHA256) {
		return false, nil
	}
	p := s.objectPath(f.SHA256, f.Executable)
	sum, err := s.stats.hash(p)
	if err != nil {
		return false, err
	}
	return sum == f.SHA256, nil
}

// Put moves the files of dir into the store and records the action. The
// files of dir are consumed (renamed into the store where possible).
func (s *Store) Put(key, address, dir string, meta map[string]string, pre *Preimage) (*ActionRecord, error) {
	m, err := artifact.Scan(dir)
	if err != nil {
		return nil, err
	}
	for _, f := range m.Files {
		src := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := s.putObject(src, f); err != nil {
			return nil, err
		}
	}
	rec := &ActionRecord{
		Key:      key,
		Address:  address,
		Manifest: m,
		Metadata: meta,
		Output:   outputDigest(m.Digest(), meta),
		Preimage: pre,
	}
	if err := s.writeRecord(rec); err != nil {
		return nil, err
	}
	return rec, nil
}

func (s *Store) writeRecord(rec *ActionRecord) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFile(s.actionPath(rec.Key), b, 0o644)
}

func (s *Store) putObject(src string, f artifact.File) error {
	dst := s.objectPath(f.SHA256, f.Executable)
	if s.objectOK(f) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	mode := os.FileMode(0o444)
	if f.Executable {
		mode = 0o555
	}
	if err := os.Chmod(src, mode); err != nil {
		return err
	}
	if err := syncFile(src); err != nil {
		return err
	}
	// src lives under the store's tmp/, on the same file system: a rename
	// is atomic and copies nothing.
	if err := os.Rename(src, dst); err != nil {
		if err := fsutil.CopyFile(src, dst, mode); err != nil {
			return fmt.Errorf("store %s: %w", f.Path, err)
		}
	}
	if err := fsutil.SyncDir(filepath.Dir(dst)); err != nil {
		return err
	}
	s.stats.remember(dst, f.SHA256)
	return nil
}

// Materialize lays the files of rec out in dir (replacing it), hardlinked
// from the store where possible.
func (s *Store) Materialize(rec *ActionRecord, dir string) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, f := range rec.Manifest.Files {
		dst := filepath.Join(tmp, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		src := s.objectPath(f.SHA256, f.Executable)
		if err := os.Link(src, dst); err == nil {
			// A new link changes the object's ctime: record the new
			// identity, or the next check would read it all again.
			s.stats.remember(src, f.SHA256)
		} else {
			mode := os.FileMode(0o444)
			if f.Executable {
				mode = 0o555
			}
			if err := fsutil.CopyFile(src, dst, mode); err != nil {
				return fmt.Errorf("materialize %s: %w", f.Path, err)
			}
		}
	}
	// Swap: the old directory goes away only once the new one is complete.
	old := ""
	if _, err := os.Lstat(dir); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			os.Rename(old, dir)
		}
		return err
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return fsutil.SyncDir(parent)
}

// SaveLast records the pre-image of the latest action of address.
func (s *Store) SaveLast(address string, pre *Preimage) error {
	b, err := json.Marshal(struct {
		Address  string    `json:"address"`
		Key      string    `json:"key"`
		Preimage *Preimage `json:"preimage"`
	}{address, pre.Key(), pre})
	if err != nil {
		return err
	}
	return fsutil.WriteFileNoSync(s.lastPath(address), b, 0o644)
}

// Last returns the last recorded pre-image of address, or nil.
func (s *Store) Last(address string) *Preimage {
	b, err := os.ReadFile(s.lastPath(address))
	if err != nil {
		return nil
	}
	var v struct {
		Preimage *Preimage `json:"preimage"`
	}
	if json.Unmarshal(b, &v) != nil {
		return nil
	}
	return v.Preimage
}

// Flush saves the stat cache.
func (s *Store) Flush() error { return s.stats.save() }

// GC removes every action record not in keep and every object no kept
// record names. It returns how many files and bytes it removed.
func (s *Store) GC(keep map[string]bool) (files int, bytes int64, err error) {
	live := map[string]bool{}
	actions := filepath.Join(s.Dir, "actions")
	err = filepath.WalkDir(actions, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		key := filepath.Base(p)
		key = key[:len(key)-len(filepath.Ext(key))]
		rec, ok := s.Lookup(key)
		if !ok || !keep[key] {
			if info, e := d.Info(); e == nil {
				bytes += info.Size()
			}
			files++
			return os.Remove(p)
		}
		for _, f := range rec.Manifest.Files {
			live[filepath.Base(s.objectPath(f.SHA256, f.Executable))] = true
		}
		return nil
	})
	if err != nil {
		return files, bytes, err
	}
	err = filepath.WalkDir(filepath.Join(s.Dir, "objects"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !live[d.Name()] {
			if info, e := d.Info(); e == nil {
				bytes += info.Size()
			}
			files++
			s.stats.forget(p)
			return os.Remove(p)
		}
		return nil
	})
	return files, bytes, err
}

// statCache maps a file's identity (path, size, mtime, inode) to its
// digest, so that a no-op run does not re-read big inputs.
type statCache struct {
	path    string
	mu      sync.Mutex
	entries map[string]statEntry
	dirty   bool
}

type statEntry struct {
	Size  int64  `json:"size"`
	MTime int64  `json:"mtime_ns"`
	CTime int64  `json:"ctime_ns"`
	Inode uint64 `json:"inode"`
	// SHA256 is the digest of the content at that identity.
	SHA256 string `json:"sha256"`
}

func loadStatCache(path string) *statCache {
	c := &statCache{path: path, entries: map[string]statEntry{}}
	if b, err := os.ReadFile(path); err == nil {
		if json.Unmarshal(b, &c.entries) != nil {
			c.entries = map[string]statEntry{}
		}
	}
	return c
}

// identity is what the stat cache trusts a digest by. The ctime counts
// because tools that copy with preserved times (cp -p, touch -r, reproducible
// archives) keep mtime and size while changing the bytes; only the kernel
// sets ctime.
func identity(info os.FileInfo) statEntry {
	e := statEntry{Size: info.Size(), MTime: info.ModTime().UnixNano()}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		e.Inode = st.Ino
		e.CTime = st.Ctim.Nano()
	}
	return e
}

func (e statEntry) same(o statEntry) bool {
	return e.Size == o.Size && e.MTime == o.MTime && e.CTime == o.CTime && e.Inode == o.Inode
}

// racyWindow: a file modified this recently may change again within the
// file system's timestamp granularity without its mtime moving, so its digest
// is not remembered (git's "racily clean" problem).
const racyWindow = 2 * time.Second

func (c *statCache) hash(p string) (string, error) {
	info, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", p)
	}
	id := identity(info)
	c.mu.Lock()
	e, ok := c.entries[p]
	c.mu.Unlock()
	if ok && e.same(id) {
		return e.SHA256, nil
	}
	sum, _, err := artifact.HashFile(p)
	if err != nil {
		return "", err
	}
	if time.Since(time.Unix(0, max(id.MTime, id.CTime))) > racyWindow {
		id.SHA256 = sum
		c.mu.Lock()
		c.entries[p] = id
		c.dirty = true
		c.mu.Unlock()
	}
	return sum, nil
}

// remember records the digest of a file sparkenv itself just wrote and
// verified (a store object): its content is known without reading it back.
func (c *statCache) remember(p, sum string) {
	info, err := os.Stat(p)
	if err != nil {
		return
	}
	id := identity(info)
	id.SHA256 = sum
	c.mu.Lock()
	c.entries[p] = id
	c.dirty = true
	c.mu.Unlock()
}

func (c *statCache) forget(p string) {
	c.mu.Lock()
	delete(c.entries, p)
	c.dirty = true
	c.mu.Unlock()
}

func (c *statCache) save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
	}
	// Drop entries of files that are gone so the cache does not grow forever.
	keys := make([]string, 0, len(c.entries))
	for k := range c.entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, err := os.Lstat(k); errors.Is(err, fs.ErrNotExist) {
			delete(c.entries, k)
		}
	}
	b, err := json.Marshal(c.entries)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileNoSync(c.path, b, 0o644); err != nil {
		return err
	}
	c.dirty = false
	return nil
}

// syncFile flushes a file's data before it is renamed into the store, so
// that after a power loss an object is either absent or complete.
func syncFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
