package publishers

import (
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sparkenv/sparkenv/internal/artifact"
)

// Metadata keys a builder sets in Result.Metadata to tell publishers how to
// lay its artifact out.
const (
	// MetaLayout is "files" (default) or "tree".
	//   files: every file gets an immutable, content-addressed name
	//          <target>/<stem>-<sha256[:12]><ext>, and a pointer
	//          <target>/latest.json, written last, names them.
	//   tree:  the artifact keeps its paths under <target>/ (a conda
	//          channel must: clients ask for fixed names); files matching
	//          MetaMutable are written after all others.
	MetaLayout = "publish.layout"
	// MetaMutable is a comma-separated list of path.Match patterns of the
	// files of a tree artifact whose names do not change with their content
	// (repodata.json, index.html...): they are written last, so a client
	// never sees an index naming a file that is not there yet.
	MetaMutable = "publish.mutable"
	// MetaMain names the artifact's primary file (the archive Spark gets).
	MetaMain = "main"
)

// Placement says where one artifact file goes.
type Placement struct {
	Source string        // absolute path of the file on this machine
	File   artifact.File // its path in the artifact, digest and size
	Key    string        // destination, slash-separated, relative to the publish root
	Last   bool          // write after every placement with Last == false
}

// Pointer is the content of <target>/latest.json for a files layout.
type Pointer struct {
	Target string         `json:"target"`
	Digest string         `json:"digest"` // the artifact manifest digest
	Files  []PointerEntry `json:"files"`
}

// PointerEntry maps an artifact path to its content-addressed key.
type PointerEntry struct {
	Path   string `json:"path"`
	Key    string `json:"key"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// PointerKey is the key of the pointer of a files-layout artifact.
func PointerKey(a Artifact) string { return a.Name + "/latest.json" }

// Layout returns where each file of a goes, ordered: every immutable
// placement first (sorted by key), then the mutable ones (sorted by key).
// For a files layout it also returns the pointer, which the publisher writes
// after everything else; for a tree layout the pointer is nil.
func Layout(a Artifact) ([]Placement, *Pointer) {
	var out []Placement
	tree := a.Metadata[MetaLayout] == "tree"
	var mutable []string
	for _, p := range strings.Split(a.Metadata[MetaMutable], ",") {
		if p = strings.TrimSpace(p); p != "" {
			mutable = append(mutable, p)
		}
	}
	var ptr *Pointer
	if !tree {
		ptr = &Pointer{Target: a.Address, Digest: a.Manifest.Digest()}
	}
	for _, f := range a.Manifest.Files {
		p := Placement{Source: filepath.Join(a.Dir, filepath.FromSlash(f.Path)), File: f}
		if tree {
			p.Key = a.Name + "/" + f.Path
			p.Last = matchAny(mutable, f.Path)
		} else {
			p.Key = a.Name + "/" + ContentName(f.Path, f.SHA256)
			ptr.Files = append(ptr.Files, PointerEntry{Path: f.Path, Key: p.Key, SHA256: f.SHA256, Size: f.Size})
		}
		out = append(out, p)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Last != out[j].Last {
			return !out[i].Last
		}
		return out[i].Key < out[j].Key
	})
	return out, ptr
}

// ContentName turns "dir/env.tar.gz" with digest d into
// "dir/env-<d[:12]>.tar.gz": the directory and the whole extension stay, so
// Spark still recognizes the archive by its suffix.
func ContentName(p, sha256 string) string {
	dir, base := path.Split(p)
	stem, ext := SplitExt(base)
	d := sha256
	if len(d) > 12 {
		d = d[:12]
	}
	return dir + stem + "-" + d + ext
}

// SplitExt splits a file name into stem and extension, keeping the double
// extensions of archives (".tar.gz", ".tar.zst", ".tar.bz2").
func SplitExt(base string) (string, string) {
	lower := strings.ToLower(base)
	for _, e := range []string{".tar.gz", ".tar.zst", ".tar.bz2", ".tar.xz"} {
		if strings.HasSuffix(lower, e) && len(base) > len(e) {
			return base[:len(base)-len(e)], base[len(base)-len(e):]
		}
	}
	ext := path.Ext(base)
	if ext == base {
		return base, ""
	}
	return strings.TrimSuffix(base, ext), ext
}

func matchAny(patterns []string, p string) bool {
	for _, pat := range patterns {
		if ok, _ := path.Match(pat, p); ok {
			return true
		}
		if ok, _ := path.Match(pat, path.Base(p)); ok && !strings.Contains(pat, "/") {
			return true
		}
	}
	return false
}
