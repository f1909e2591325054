package fsutil

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// StaleAfter is how old a temporary entry of a cache must be before
// RemoveStale takes it for one a killed process left behind.
const StaleAfter = time.Hour

// RemoveStale removes the entries of dir whose names start with one of
// prefixes and that were last modified more than StaleAfter ago: the
// temporary directories and files of cache writers that were killed
// before they could rename or remove them. Errors are ignored; a cache
// that cannot be swept is still usable.
func RemoveStale(dir string, prefixes ...string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		stale := false
		for _, p := range prefixes {
			stale = stale || strings.HasPrefix(e.Name(), p)
		}
		if !stale {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > StaleAfter {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}
