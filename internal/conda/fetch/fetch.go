// Package fetch is the package cache shared by every environment and
// project on a machine: conda package archives downloaded once, verified,
// and stored under their sha256, plus their extracted trees.
//
// A file appears under its final name only after its checksum was verified
// (temporary file, then rename), so a file found there is trusted without
// reading it again. Concurrent downloads of one package, by goroutines or
// by processes, take a file lock per entry; the downloader holding it may
// resume a partial download left by an earlier attempt.
//
// The package never deletes or rewrites a verified entry and never decides
// what to download: callers (the installer) pass the exact files.
package fetch

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// Cache is a package cache rooted at Dir:
//
//	sha256/<ab>/<hex>/<file>   verified archives (<ab>: the first two hex digits)
//	md5/<ab>/<hex>/<file>      archives known only by md5 (old repodata)
//	extracted/<hex>/           extracted packages
//	partial/, locks/           downloads in progress and their locks
type Cache struct {
	Dir string
	// Extract unpacks a package archive into dest, an empty directory.
	Extract func(ctx context.Context, archive, dest string) error
}

// DefaultDir is the per-user cache: <user cache dir>/sparkenv/pkgs.
func DefaultDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("package cache: %w", err)
	}
	return filepath.Join(d, "sparkenv", "pkgs"), nil
}

// Item is one package file to have in the cache.
type Item struct {
	URL      string
	SHA256   string // preferred key and check
	MD5      string // checked only when SHA256 is empty
	Size     int64  // checked when > 0
	FileName string // default: the last element of URL's path
}

// key is how an item is stored and locked.
type key struct {
	algo string // "sha256" or "md5"
	hex  string
	file string
}

func (k key) id() string { return k.algo + "-" + k.hex }

func itemKey(it Item) (key, error) {
	file := it.FileName
	if file == "" {
		if u, err := url.Parse(it.URL); err == nil {
			file = path.Base(u.Path)
		}
	}
	if file == "" || file == "." || file == "/" || file == ".." || strings.ContainsAny(file, `/\`) || strings.HasPrefix(file, ".") {
		return key{}, fmt.Errorf("package %q (%s): not a plain file name", file, it.URL)
	}
	switch {
	case it.SHA256 != "":
		h := strings.ToLower(it.SHA256)
		if !isHex(h, sha256.Size) {
			return key{}, fmt.Errorf("package %s (%s): sha256 %q is not 64 hex digits", file, it.URL, it.SHA256)
		}
		return key{"sha256", h, file}, nil
	case it.MD5 != "":
		h := strings.ToLower(it.MD5)
		if !isHex(h, md5.Size) {
			return key{}, fmt.Errorf("package %s (%s): md5 %q is not 32 hex digits", file, it.URL, it.MD5)
		}
		return key{"md5", h, file}, nil
	}
	return key{}, fmt.Errorf("package %s (%s): no sha256 or md5 to verify it against", file, it.URL)
}

func isHex(s string, n int) bool {
	if len(s) != 2*n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func (c *Cache) entry(k key) string {
	return filepath.Join(c.Dir, k.algo, k.hex[:2], k.hex, k.file)
}

// Path is where the cache keeps it, whether or not it is there yet.
func (c *Cache) Path(it Item) (string, error) {
	k, err := itemKey(it)
	if err != nil {
		return "", err
	}
	return c.entry(k), nil
}

// Lookup returns the cached file of it, if present.
func (c *Cache) Lookup(it Item) (string, bool) {
	p, err := c.Path(it)
	if err != nil {
		return "", false
	}
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return p, true
	}
	return "", false
}

// Verify checks a file against a sha256, for callers that trust nothing.
func Verify(path, sha string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(sha) {
		return fmt.Errorf("verify %s: sha256 is %s, want %s", path, got, sha)
	}
	return nil
}

// lock takes the lock of one cache entry, waiting for another holder.
func (c *Cache) lock(ctx context.Context, name string) (*flock.Flock, error) {
	dir := filepath.Join(c.Dir, "locks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("package cache: %w", err)
	}
	l := flock.New(filepath.Join(dir, name+".lock"))
	ok, err := l.TryLockContext(ctx, 20*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("package cache: lock %s: %w", name, err)
	}
	if !ok {
		return nil, fmt.Errorf("package cache: lock %s: %w", name, context.Cause(ctx))
	}
	return l, nil
}

func newHash(k key) hash.Hash {
	if k.algo == "md5" {
		return md5.New()
	}
	return sha256.New()
}

// errMismatch marks content that is not what the item says.
var errMismatch = errors.New("checksum mismatch")
