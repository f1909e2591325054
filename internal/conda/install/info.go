package install

import (
	"github.com/sparkenv/sparkenv/internal/conda/pkg"
	"github.com/sparkenv/sparkenv/internal/conda/repodata"
)

// pathPythonEntryPoint is the conda-meta path type of a generated entry
// point script (CEP 32).
const pathPythonEntryPoint = "unix_python_entry_point"

// pkgInfo is what Install needs from info/ of an extracted package.
type pkgInfo struct {
	Index       repodata.Record
	Paths       []pkg.PathsEntry
	EntryPoints []string // link.json noarch.entry_points
	NoarchType  string   // link.json noarch.type, else index.json noarch
}

// readInfo reads info/ of the extracted package at dir (paths.json, or the
// legacy info/files + has_prefix + no_link).
func readInfo(dir string) (*pkgInfo, error) {
	info, err := pkg.ReadInfoDir(dir)
	if err != nil {
		return nil, err
	}
	out := &pkgInfo{Index: info.Index, Paths: info.Paths, NoarchType: info.Index.Noarch}
	if info.Link != nil {
		if info.Link.Noarch.Type != "" {
			out.NoarchType = info.Link.Noarch.Type
		}
		out.EntryPoints = info.Link.Noarch.EntryPoints
	}
	return out, nil
}
