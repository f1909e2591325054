package fetch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sparkenv/sparkenv/internal/fsutil"
)

// Extracted returns the directory holding the extracted package whose
// archive has the given sha256, extracting archivePath there first if no
// one has. Extraction happens once per machine: under the entry's lock, into
// a temporary directory renamed into place when complete, so a directory
// found under its final name is always whole.
func (c *Cache) Extracted(ctx context.Context, archivePath, sha256 string) (string, error) {
	sum := strings.ToLower(sha256)
	if !isHex(sum, 32) {
		return "", fmt.Errorf("extract %s: sha256 %q is not 64 hex digits", archivePath, sha256)
	}
	parent := filepath.Join(c.Dir, "extracted")
	dest := filepath.Join(parent, sum)
	if isDir(dest) {
		return dest, nil
	}
	if c.Extract == nil {
		return "", errors.New("package cache: no extractor configured")
	}
	l, err := c.lock(ctx, "extract-"+sum)
	if err != nil {
		return "", err
	}
	defer l.Unlock()
	if isDir(dest) {
		return dest, nil
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("package cache: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".tmp-"+sum[:12]+"-")
	if err != nil {
		return "", fmt.Errorf("package cache: %w", err)
	}
	if err := c.Extract(ctx, archivePath, tmp); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("extract %s: %w", archivePath, err)
	}
	// the rename publishes the tree: its files must be on disk first
	if err := syncTree(tmp); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("extract %s: %w", archivePath, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("package cache: %w", err)
	}
	if err := fsutil.SyncDir(parent); err != nil {
		return "", fmt.Errorf("package cache: %w", err)
	}
	return dest, nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
