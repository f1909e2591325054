// Package artifact describes what an action produced: a manifest of files
// with their sha256 and size. The manifest digest covers content only, never
// provenance (addresses, keys, times), so two builds that produce the same
// bytes have the same digest and downstream actions are not rebuilt.
package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// File is one regular file of an artifact.
type File struct {
	Path       string `json:"path"` // slash-separated, relative to the artifact root
	SHA256     string `json:"sha256"`
	Size       int64  `json:"size"`
	Executable bool   `json:"executable,omitempty"`
}

// Manifest lists the files of an artifact, sorted by path.
type Manifest struct {
	Files []File `json:"files"`
}

// Sort orders the files by path; every function that returns a Manifest
// returns it sorted.
func (m *Manifest) Sort() {
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
}

// Digest is the sha256 of the canonical JSON encoding of the sorted manifest.
func (m Manifest) Digest() string {
	c := Manifest{Files: append([]File(nil), m.Files...)}
	c.Sort()
	if c.Files == nil {
		c.Files = []File{}
	}
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // a Manifest always encodes
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Size is the total size of the files.
func (m Manifest) Size() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// Lookup returns the file at p.
func (m Manifest) Lookup(p string) (File, bool) {
	for _, f := range m.Files {
		if f.Path == p {
			return f, true
		}
	}
	return File{}, false
}

// HashFile returns the hex sha256 and size of the file at p.
func HashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Scan builds the manifest of every regular file below root. Symbolic links,
// devices and other special files are refused: artifacts are plain files.
func Scan(root string) (Manifest, error) {
	var m Manifest
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !d.Type().IsRegular() {
			return fmt.Errorf("artifact file %s is not a regular file (%s)", rel, d.Type())
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		sum, size, err := HashFile(p)
		if err != nil {
			return err
		}
		m.Files = append(m.Files, File{Path: rel, SHA256: sum, Size: size, Executable: info.Mode()&0o111 != 0})
		return nil
	})
	if err != nil {
		return Manifest{}, err
	}
	m.Sort()
	return m, nil
}

// ValidPath reports whether p is a clean, relative, slash-separated path that
// stays inside the artifact root.
func ValidPath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") {
		return false
	}
	if path.Clean(p) != p {
		return false
	}
	return p != ".." && !strings.HasPrefix(p, "../")
}
