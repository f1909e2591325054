package pkg

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sparkenv/sparkenv/internal/conda/repodata"
)

// PathType says how a file of a package is placed into an environment.
type PathType string

// Path types of paths.json.
const (
	PathHardlink  PathType = "hardlink" // a regular file; the default
	PathSoftlink  PathType = "softlink"
	PathDirectory PathType = "directory" // an empty directory the package creates
)

// FileMode says how a prefix placeholder is replaced in a file.
type FileMode string

// File modes of paths.json.
const (
	FileModeText   FileMode = "text"   // replace, the length may change
	FileModeBinary FileMode = "binary" // replace inside C strings, pad with NULs
)

// LegacyPlaceholder is the 32-character prefix placeholder of old packages.
// It is assembled at run time so that a binary built from this code never
// contains it (an installer would otherwise patch its own executable).
func LegacyPlaceholder() string {
	return "/opt/" + strings.Repeat("anaconda", 1) + "1anaconda2" + "anaconda3"
}

// PathsEntry is one file of a package, as paths.json describes it. Entries
// read from legacy info/files + info/has_prefix use the same shape.
type PathsEntry struct {
	Path              string   `json:"_path"`
	PathType          PathType `json:"path_type"`
	FileMode          FileMode `json:"file_mode,omitempty"`          // set only with a placeholder
	PrefixPlaceholder string   `json:"prefix_placeholder,omitempty"` // "" when the file needs no patching
	NoLink            bool     `json:"no_link,omitempty"`            // always copy, never link
	SHA256            string   `json:"sha256,omitempty"`             // "" when unknown (legacy)
	Size              int64    `json:"size_in_bytes"`                // 0 when unknown (legacy)
}

// LinkJSON is info/link.json.
type LinkJSON struct {
	PackageMetadataVersion int        `json:"package_metadata_version"`
	Noarch                 NoarchLink `json:"noarch"`
}

// NoarchLink is the noarch part of link.json.
type NoarchLink struct {
	Type        string   `json:"type"`                   // "python" or "generic"
	EntryPoints []string `json:"entry_points,omitempty"` // "cmd = pkg.mod:func"
}

// RunExports is info/run_exports.json (CEP 12).
type RunExports struct {
	Weak             []string `json:"weak,omitempty"`
	Strong           []string `json:"strong,omitempty"`
	Noarch           []string `json:"noarch,omitempty"`
	WeakConstrains   []string `json:"weak_constrains,omitempty"`
	StrongConstrains []string `json:"strong_constrains,omitempty"`
}

// Info is what a package's info/ directory says about it.
type Info struct {
	Index     repodata.Record // info/index.json
	IndexJSON []byte          // info/index.json as stored

	// Paths lists the package's files, sorted by path. From paths.json when
	// present, else from info/files, info/has_prefix and info/no_link.
	Paths []PathsEntry
	// Legacy is true when Paths came from info/files (no paths.json). Such
	// entries have no sha256; their size and link type are known only when
	// read from an extracted directory (ReadInfoDir) or a whole archive.
	Legacy bool

	Link       *LinkJSON   // nil when the package has no link.json
	RunExports *RunExports // nil when the package has no run_exports.json
}

// infoFiles are the members of info/ that parseInfo reads.
var infoFiles = map[string]bool{
	"info/index.json":       true,
	"info/paths.json":       true,
	"info/files":            true,
	"info/has_prefix":       true,
	"info/no_link":          true,
	"info/link.json":        true,
	"info/run_exports.json": true,
}

// maxInfoFile bounds each metadata file read into memory.
const maxInfoFile = 256 << 20

// ReadInfoDir reads the info/ directory of an extracted package.
func ReadInfoDir(extractedDir string) (*Info, error) {
	files := map[string][]byte{}
	for name := range infoFiles {
		p := filepath.Join(extractedDir, filepath.FromSlash(name))
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: not a regular file", p)
		}
		if st.Size() > maxInfoFile {
			return nil, fmt.Errorf("%s: too large (%d bytes)", p, st.Size())
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		files[name] = b
	}
	info, err := parseInfo(files)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", extractedDir, err)
	}
	if info.Legacy {
		// info/files says nothing of links or sizes: look at the files.
		for i := range info.Paths {
			e := &info.Paths[i]
			st, err := os.Lstat(filepath.Join(extractedDir, filepath.FromSlash(e.Path)))
			if err != nil {
				continue // a missing file is the installer's error to report
			}
			if st.Mode()&fs.ModeSymlink != 0 {
				e.PathType = PathSoftlink
			} else if st.Mode().IsRegular() {
				e.Size = st.Size()
			}
		}
	}
	return info, nil
}

// parseInfo builds an Info from the contents of the members of infoFiles.
func parseInfo(files map[string][]byte) (*Info, error) {
	raw, ok := files["info/index.json"]
	if !ok {
		return nil, errors.New("info/index.json is missing")
	}
	info := &Info{IndexJSON: raw}
	if err := json.Unmarshal(raw, &info.Index); err != nil {
		return nil, fmt.Errorf("info/index.json: %w", err)
	}
	if info.Index.Name == "" || info.Index.Version == "" {
		return nil, errors.New("info/index.json: name or version is missing")
	}
	if b, ok := files["info/paths.json"]; ok {
		paths, err := ParsePathsJSON(b)
		if err != nil {
			return nil, fmt.Errorf("info/paths.json: %w", err)
		}
		info.Paths = paths
	} else {
		paths, err := parseLegacy(files["info/files"], files["info/has_prefix"], files["info/no_link"])
		if err != nil {
			return nil, err
		}
		info.Paths = paths
		info.Legacy = true
	}
	if b, ok := files["info/link.json"]; ok {
		var l LinkJSON
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("info/link.json: %w", err)
		}
		info.Link = &l
	}
	if b, ok := files["info/run_exports.json"]; ok {
		var r RunExports
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("info/run_exports.json: %w", err)
		}
		info.RunExports = &r
	}
	return info, nil
}

// ParsePathsJSON reads a paths.json document (paths_version 1) and returns
// its entries with defaults filled in, sorted by path.
func ParsePathsJSON(b []byte) ([]PathsEntry, error) {
	// One pass into typed entries; only a document that fails it is
	// decoded again entry by entry, to say which entry is wrong.
	var doc struct {
		Paths        []pathsJSONEntry `json:"paths"`
		PathsVersion int              `json:"paths_version"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		var raw struct {
			Paths []json.RawMessage `json:"paths"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			return nil, err
		}
		for i, r := range raw.Paths {
			var e pathsJSONEntry
			if err := json.Unmarshal(r, &e); err != nil {
				return nil, fmt.Errorf("entry %d: %w", i, err)
			}
		}
		return nil, err
	}
	if doc.PathsVersion != 1 {
		return nil, fmt.Errorf("paths_version %d is not supported (want 1)", doc.PathsVersion)
	}
	out := make([]PathsEntry, 0, len(doc.Paths))
	for i, e := range doc.Paths {
		pe := PathsEntry{
			Path: e.Path, PathType: e.PathType, FileMode: e.FileMode,
			PrefixPlaceholder: e.PrefixPlaceholder, NoLink: e.NoLink, SHA256: e.SHA256,
		}
		if e.Size != nil {
			pe.Size = *e.Size
		}
		if err := normalizeEntry(&pe); err != nil {
			return nil, fmt.Errorf("entry %d (%q): %w", i, e.Path, err)
		}
		out = append(out, pe)
	}
	sortEntries(out)
	return out, nil
}

// pathsJSONEntry is one entry of paths.json as written.
type pathsJSONEntry struct {
	Path              string   `json:"_path"`
	PathType          PathType `json:"path_type"`
	FileMode          FileMode `json:"file_mode"`
	PrefixPlaceholder string   `json:"prefix_placeholder"`
	NoLink            bool     `json:"no_link"`
	SHA256            string   `json:"sha256"`
	Size              *int64   `json:"size_in_bytes"`
}

func normalizeEntry(e *PathsEntry) error {
	if err := checkRelPath(e.Path); err != nil {
		return err
	}
	switch e.PathType {
	case "":
		e.PathType = PathHardlink
	case PathHardlink, PathSoftlink, PathDirectory:
	default:
		return fmt.Errorf("unknown path_type %q", e.PathType)
	}
	if e.Size < 0 {
		return fmt.Errorf("negative size_in_bytes %d", e.Size)
	}
	if e.PrefixPlaceholder == "" {
		e.FileMode = ""
		return nil
	}
	switch e.FileMode {
	case "":
		e.FileMode = FileModeText
	case FileModeText, FileModeBinary:
	default:
		return fmt.Errorf("unknown file_mode %q", e.FileMode)
	}
	return nil
}

func sortEntries(es []PathsEntry) {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Path < es[j].Path })
}

// parseLegacy turns info/files, info/has_prefix and info/no_link into
// entries.
func parseLegacy(files, hasPrefix, noLink []byte) ([]PathsEntry, error) {
	byPath := map[string]*PathsEntry{}
	var out []PathsEntry
	for _, p := range lines(files) {
		if err := checkRelPath(p); err != nil {
			return nil, fmt.Errorf("info/files: %q: %w", p, err)
		}
		if _, dup := byPath[p]; dup {
			continue
		}
		out = append(out, PathsEntry{Path: p, PathType: PathHardlink})
		byPath[p] = nil
	}
	for i := range out {
		byPath[out[i].Path] = &out[i]
	}
	for n, line := range lines(hasPrefix) {
		placeholder, mode, p, err := ParseHasPrefixLine(line)
		if err != nil {
			return nil, fmt.Errorf("info/has_prefix line %d: %w", n+1, err)
		}
		e := byPath[p]
		if e == nil {
			return nil, fmt.Errorf("info/has_prefix line %d: %q is not listed in info/files", n+1, p)
		}
		e.PrefixPlaceholder, e.FileMode = placeholder, mode
	}
	for _, p := range lines(noLink) {
		if e := byPath[p]; e != nil {
			e.NoLink = true
		}
	}
	sortEntries(out)
	return out, nil
}

// lines returns the non-empty lines of b, without surrounding blanks.
func lines(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), maxInfoFile)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// ParseHasPrefixLine reads one line of info/has_prefix: either a path alone
// (the legacy placeholder, text mode) or `placeholder mode path`, where each
// field may be quoted with single or double quotes.
func ParseHasPrefixLine(line string) (placeholder string, mode FileMode, path string, err error) {
	fields, err := splitQuoted(line)
	if err != nil {
		return "", "", "", err
	}
	switch len(fields) {
	case 1:
		placeholder, mode, path = LegacyPlaceholder(), FileModeText, fields[0]
	case 3:
		placeholder, mode, path = fields[0], FileMode(fields[1]), fields[2]
		if mode != FileModeText && mode != FileModeBinary {
			return "", "", "", fmt.Errorf("unknown file mode %q", fields[1])
		}
		if placeholder == "" {
			return "", "", "", errors.New("empty placeholder")
		}
	default:
		return "", "", "", fmt.Errorf("want `path` or `placeholder mode path`, got %d fields", len(fields))
	}
	if err := checkRelPath(path); err != nil {
		return "", "", "", fmt.Errorf("%q: %w", path, err)
	}
	return placeholder, mode, path, nil
}

// splitQuoted splits on blanks, honouring '…' and "…" around (parts of)
// fields.
func splitQuoted(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inField := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inField = r, true
		case r == ' ' || r == '\t':
			if inField {
				out = append(out, cur.String())
				cur.Reset()
				inField = false
			}
		default:
			cur.WriteRune(r)
			inField = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if inField {
		out = append(out, cur.String())
	}
	return out, nil
}

// checkRelPath accepts a clean, relative, slash-separated path that stays
// inside the package root.
func checkRelPath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	if strings.HasPrefix(p, "/") {
		return errors.New("absolute path")
	}
	if strings.ContainsRune(p, 0) {
		return errors.New("NUL in path")
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return errors.New("path contains ..")
		}
	}
	if path.Clean(p) != p {
		return errors.New("path is not clean")
	}
	return nil
}

// MarshalPathsJSON writes a paths.json document (paths_version 1) for
// entries, sorted by path, in the layout conda-build uses.
func MarshalPathsJSON(entries []PathsEntry) ([]byte, error) {
	es := append([]PathsEntry(nil), entries...)
	sortEntries(es)
	type entry struct {
		Path              string   `json:"_path"`
		PathType          PathType `json:"path_type"`
		FileMode          FileMode `json:"file_mode,omitempty"`
		PrefixPlaceholder string   `json:"prefix_placeholder,omitempty"`
		NoLink            bool     `json:"no_link,omitempty"`
		SHA256            string   `json:"sha256,omitempty"`
		Size              *int64   `json:"size_in_bytes,omitempty"`
	}
	doc := struct {
		Paths        []entry `json:"paths"`
		PathsVersion int     `json:"paths_version"`
	}{Paths: make([]entry, 0, len(es)), PathsVersion: 1}
	for _, e := range es {
		if err := normalizeEntry(&e); err != nil {
			return nil, fmt.Errorf("%q: %w", e.Path, err)
		}
		out := entry{Path: e.Path, PathType: e.PathType, FileMode: e.FileMode,
			PrefixPlaceholder: e.PrefixPlaceholder, NoLink: e.NoLink, SHA256: e.SHA256}
		if e.PathType != PathDirectory {
			size := e.Size
			out.Size = &size
		}
		doc.Paths = append(doc.Paths, out)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// UnmarshalJSON also reads the bare string form `"noarch": "python"`.
func (n *NoarchLink) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*n = NoarchLink{Type: s}
		return nil
	}
	type plain NoarchLink
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*n = NoarchLink(p)
	return nil
}

// UnmarshalJSON also reads the early list form of run_exports, whose
// entries are weak.
func (r *RunExports) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*r = RunExports{Weak: list}
		return nil
	}
	type plain RunExports
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*r = RunExports(p)
	return nil
}
