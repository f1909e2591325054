package condaindex

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/sparkenv/sparkenv/internal/conda/repodata"
	"github.com/sparkenv/sparkenv/internal/fsutil"
)

// CacheFile is the name of the incremental cache in a channel's root. It
// is advisory: deleting it only makes the next run read every package.
const CacheFile = ".sparkenv-index.json"

// cacheVersion changes whenever what a cached record holds, or how it is
// computed, changes: an older cache is then ignored.
const cacheVersion = "sparkenv.index.v1"

// fileKey is what tells that a file is unchanged since it was read.
type fileKey struct {
	Size    int64  `json:"size"`
	MtimeNS int64  `json:"mtime_ns"`
	Inode   uint64 `json:"inode"`
}

func keyOf(fi fs.FileInfo) fileKey {
	return fileKey{Size: fi.Size(), MtimeNS: fi.ModTime().UnixNano(), Inode: inodeOf(fi)}
}

// plainRecord stores a record without the lenient decoding of
// repodata.Record (which, for one, rescales small timestamps).
type plainRecord repodata.Record

type cacheEntry struct {
	fileKey
	Record plainRecord             `json:"record"`
	Meta   repodata.ChannelPackage `json:"meta"`
}

type cacheDoc struct {
	Version string                 `json:"version"`
	Files   map[string]*cacheEntry `json:"files"` // by "<subdir>/<file name>"
}

// parseCache reads a cache file; anything unusable gives an empty cache.
func parseCache(b []byte) map[string]*cacheEntry {
	var doc cacheDoc
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil || doc.Version != cacheVersion {
		return map[string]*cacheEntry{}
	}
	out := make(map[string]*cacheEntry, len(doc.Files))
	for k, e := range doc.Files {
		if e == nil || e.Record.FileName == "" {
			continue
		}
		out[k] = e
	}
	return out
}

func loadCache(path string) (map[string]*cacheEntry, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]*cacheEntry{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("index cache: %w", err)
	}
	return parseCache(b), nil
}

func marshalCache(entries map[string]*cacheEntry) ([]byte, error) {
	// encoding/json writes map keys sorted
	doc := cacheDoc{Version: cacheVersion, Files: entries}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("index cache: %w", err)
	}
	return buf.Bytes(), nil
}

func saveCache(path string, entries map[string]*cacheEntry) error {
	b, err := marshalCache(entries)
	if err != nil {
		return err
	}
	// A lost cache only costs a re-read, so no fsync.
	if err := fsutil.WriteFileNoSync(path, b, 0o644); err != nil {
		return fmt.Errorf("index cache: %w", err)
	}
	return nil
}
