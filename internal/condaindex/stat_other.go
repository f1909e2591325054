//go:build !unix

package condaindex

import "io/fs"

// inodeOf is 0 where there are no inodes: size and mtime alone decide.
func inodeOf(fs.FileInfo) uint64 { return 0 }
