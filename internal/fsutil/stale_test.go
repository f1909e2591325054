package fsutil

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRemoveStale removes only old entries with the given prefixes.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-2 * StaleAfter)
	mk := func(name string, when time.Time) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Join(p, "inner"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gone := []string{mk(".tmp-killed", old), mk(".old-killed", old)}
	kept := []string{mk(".tmp-running", time.Now()), mk("entry", old), mk(".other-old", old)}
	RemoveStale(dir, ".tmp-", ".old-")
	for _, p := range gone {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s not removed", p)
		}
	}
	for _, p := range kept {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	RemoveStale(filepath.Join(dir, "missing"), ".tmp-") // no error, no panic
}
