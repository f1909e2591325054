//go:build !linux

package fetch

import (
	"io/fs"
	"os"
	"path/filepath"
)

// syncTree fsyncs every regular file of a freshly written tree.
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}
