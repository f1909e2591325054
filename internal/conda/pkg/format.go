package pkg

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Format is a conda package archive format.
type Format int

// The two archive formats of CEP 35.
const (
	Conda  Format = iota + 1 // .conda: a stored zip of zstd tars
	TarBz2                   // .tar.bz2: a bzip2 tar
)

// Ext is the file name extension of f, with its dot.
func (f Format) Ext() string {
	switch f {
	case Conda:
		return ".conda"
	case TarBz2:
		return ".tar.bz2"
	}
	return ""
}

func (f Format) String() string {
	if e := f.Ext(); e != "" {
		return e[1:]
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// FormatOf tells the format of a package file from its name and returns the
// name's stem (name-version-build).
func FormatOf(name string) (Format, string, error) {
	base := filepath.Base(name)
	for _, f := range []Format{Conda, TarBz2} {
		if stem, ok := strings.CutSuffix(base, f.Ext()); ok && stem != "" {
			return f, stem, nil
		}
	}
	return 0, "", fmt.Errorf("%s: not a conda package file name (want .conda or .tar.bz2)", name)
}
