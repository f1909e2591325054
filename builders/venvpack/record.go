package venvpack

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/sparkenv/sparkenv/internal/fsutil"
	"github.com/sparkenv/sparkenv/internal/wheel"
)

// fixRecord updates the hashes and sizes that the installed RECORD of a
// distribution holds for files rewritten after installation, so that the
// environment still verifies (pip and importlib.metadata read RECORD).
// Its paths are relative to site.
func fixRecord(distInfo, site string, changed map[string]bool) error {
	if len(changed) == 0 {
		return nil
	}
	p := filepath.Join(distInfo, "RECORD")
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	entries, err := wheel.ParseRecord(data)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.UseCRLF = false
	for _, e := range entries {
		hash, size := e.Hash, ""
		if e.Size >= 0 {
			size = strconv.FormatInt(e.Size, 10)
		}
		full := filepath.Clean(filepath.Join(site, filepath.FromSlash(e.Path)))
		if changed[full] {
			b, err := os.ReadFile(full)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			hash = "sha256=" + base64.RawURLEncoding.EncodeToString(sum[:])
			size = strconv.Itoa(len(b))
		}
		if err := w.Write([]string{e.Path, hash, size}); err != nil {
			return err
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return fsutil.WriteFile(p, buf.Bytes(), 0o644)
}
