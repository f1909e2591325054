package condapack

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/sparkenv/sparkenv/internal/archive"
)

// PackPrefix is the prefix a relocatable environment is installed for: a
// path no real installation uses, padded to 255 bytes like conda-build's
// placeholders (see the package documentation).
// Environments with a package whose binary placeholder is shorter get a
// prefix cut to that length (PackOptions.Prefix).
var PackPrefix = padPrefix(packBase, maxRoom)

func padPrefix(base string, n int) string {
	s := base
	for len(s) < n {
		s += "_placehold"
	}
	return s[:n]
}

// ManifestPath is where the list of files holding the packing prefix is
// stored inside a relocatable archive.
const ManifestPath = ".sparkenv/pack.json"

// UnpackPath is the relocation script inside a relocatable archive.
const UnpackPath = "bin/conda-unpack"

//go:embed conda_unpack.py
var unpackScript []byte

// Manifest is the content of ManifestPath.
type Manifest struct {
	Version int `json:"version"`
	// Prefix is the prefix the listed files currently hold; conda-unpack
	// replaces it and then records the new one.
	Prefix string         `json:"prefix"`
	Files  []ManifestFile `json:"files"`
}

// ManifestFile is one file holding the prefix.
type ManifestFile struct {
	Path string `json:"path"`
	Mode string `json:"mode"` // "text" or "binary"
}

// PackOptions tune Pack.
type PackOptions struct {
	Format   archive.Format
	Level    int
	Jobs     int
	Symlinks archive.SymlinkPolicy
	// Relocatable lists the files holding Prefix and adds the manifest
	// and bin/conda-unpack.
	Relocatable bool
	// Prefix the environment was installed for; default PackPrefix.
	Prefix string
}

// PackReport says what Pack did.
type PackReport struct {
	Entries   int
	Relocated int // files listed for conda-unpack
}

// Pack writes the installed environment at stage as an archive at out.
func Pack(ctx context.Context, stage, out string, o PackOptions) (*PackReport, error) {
	entries, err := archive.Collect(stage, archive.CollectOptions{})
	if err != nil {
		return nil, err
	}
	rep := &PackReport{}
	prefix := o.Prefix
	if prefix == "" {
		prefix = PackPrefix
	}
	if o.Relocatable {
		m, err := scan(ctx, stage, entries, prefix, o.Jobs)
		if err != nil {
			return nil, err
		}
		rep.Relocated = len(m.Files)
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return nil, err
		}
		kept := entries[:0]
		hasDir := false
		for _, e := range entries {
			switch e.Path {
			case UnpackPath, ManifestPath:
				continue
			case path.Dir(ManifestPath):
				hasDir = true
			}
			kept = append(kept, relativeLink(e, prefix))
		}
		entries = append(kept,
			archive.Entry{Path: ManifestPath, Mode: 0o644, Data: append(b, '\n')},
			archive.Entry{Path: UnpackPath, Mode: 0o755, Data: unpackScript})
		if !hasDir {
			entries = append(entries, archive.Entry{Path: path.Dir(ManifestPath), Mode: fs.ModeDir | 0o755})
		}
	}
	rep.Entries = len(entries)
	err = archive.Write(ctx, out, o.Format, entries, archive.Options{Level: o.Level, Jobs: o.Jobs, Symlinks: o.Symlinks})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// relativeLink turns a link to an absolute path inside prefix into a
// relative one, which stays valid wherever the archive is unpacked.
func relativeLink(e archive.Entry, prefix string) archive.Entry {
	if !e.IsSymlink() || !strings.HasPrefix(e.Linkname, prefix+"/") {
		return e
	}
	target := strings.TrimPrefix(e.Linkname, prefix+"/")
	rel, err := filepath.Rel(path.Dir("/"+e.Path), "/"+target)
	if err == nil {
		e.Linkname = filepath.ToSlash(rel)
	}
	return e
}

// scan finds the regular files of entries that contain prefix. A file is
// patched in binary mode when conda-meta says so or when it holds a NUL
// byte, in text mode otherwise.
func scan(ctx context.Context, stage string, entries []archive.Entry, prefix string, jobs int) (*Manifest, error) {
	declared, err := declaredModes(stage)
	if err != nil {
		return nil, err
	}
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	needle := []byte(prefix)
	modes := make([]string, len(entries))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for i, e := range entries {
		if e.IsDir() || e.IsSymlink() || e.Source == "" || skipScan(e.Path) {
			continue
		}
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			found, nul, err := contains(e.Source, needle)
			if err != nil {
				return fmt.Errorf("scan %s: %w", e.Path, err)
			}
			switch {
			case !found:
			case declared[e.Path] != "":
				modes[i] = declared[e.Path]
			case nul:
				modes[i] = "binary"
			default:
				modes[i] = "text"
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	m := &Manifest{Version: 1, Prefix: prefix, Files: []ManifestFile{}}
	for i, mode := range modes {
		if mode != "" {
			m.Files = append(m.Files, ManifestFile{Path: entries[i].Path, Mode: mode})
		}
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	return m, nil
}

// contains reports whether the file at p holds needle and whether it holds
// a NUL byte, reading it in blocks so that large libraries do not sit in
// memory whole.
func contains(p string, needle []byte) (found, nul bool, err error) {
	f, err := os.Open(p)
	if err != nil {
		return false, false, err
	}
	defer f.Close()
	keep := len(needle) - 1
	buf := make([]byte, keep+1<<20)
	have := 0 // bytes carried over from the previous block
	for {
		n, err := io.ReadFull(f, buf[have:])
		block := buf[:have+n]
		if !nul && bytes.IndexByte(block[have:], 0) >= 0 {
			nul = true
		}
		if !found && bytes.Contains(block, needle) {
			found = true
		}
		if found && nul {
			return true, true, nil
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return found, nul, nil
		}
		if err != nil {
			return false, false, err
		}
		// The tail of this block may start an occurrence that ends in
		// the next one.
		have = copy(buf, block[len(block)-keep:])
	}
}

// skipScan leaves out compiled bytecode: the source path stored in a .pyc
// is replaced by the real one at import, and patching marshalled strings
// would corrupt the file.
func skipScan(p string) bool {
	return strings.HasSuffix(p, ".pyc") || strings.HasSuffix(p, ".pyo")
}

// declaredModes reads the placeholder modes conda-meta records for each
// installed path.
func declaredModes(stage string) (map[string]string, error) {
	out := map[string]string{}
	recs, err := readMeta(stage)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		for _, p := range r.PathsData.Paths {
			if p.FileMode == "binary" || p.FileMode == "text" {
				out[p.Path] = p.FileMode
			}
		}
	}
	return out, nil
}
