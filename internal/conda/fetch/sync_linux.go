package fetch

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncTree flushes a freshly written tree with one syncfs(2) of its file
// system, far cheaper than an fsync per file of a large package.
func syncTree(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}
