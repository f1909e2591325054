package install

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/sparkenv/sparkenv/internal/conda/pkg"
	"github.com/sparkenv/sparkenv/internal/fsutil"
)

// writeMeta writes conda-meta/<dist>.json for every package and
// conda-meta/history (CEP 32).
func (in *installer) writeMeta() error {
	dir := filepath.Join(in.tmp, "conda-meta")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for pi, ps := range in.pkgs {
		g.Go(func() error {
			// A layout with a cache names the record kept there for the
			// same inputs, or writes it there.
			var cached string
			if in.keys != nil {
				cached = in.metaEntry(ps, in.keys[pi])
				if fi, err := os.Lstat(cached); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == 0o644 && fi.Size() > 0 {
					ps.meta = cached
					return nil
				}
			}
			// Room for each path twice (files, paths) and its record.
			hint := 4096
			for _, it := range ps.items {
				hint += 2*len(it.dest) + 260
			}
			b, err := encodeJSON(in.prefixRecord(ps), hint)
			if err != nil {
				return fmt.Errorf("install: conda-meta of %s: %w", ps.dist, err)
			}
			if cached != "" {
				err := fsutil.WriteFile(cached, b, 0o644)
				if err == nil {
					ps.meta = cached
					return nil
				}
				in.logf("warning: layout cache: conda-meta of %s: %v", ps.dist, err)
			}
			if err := writeNew(filepath.Join(dir, ps.dist+".json"), b, 0o644, in.fixed); err != nil {
				return fmt.Errorf("install: conda-meta of %s: %w", ps.dist, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := writeNew(filepath.Join(dir, "history"), in.history(), 0o644, in.fixed); err != nil {
		return fmt.Errorf("install: conda-meta/history: %w", err)
	}
	return nil
}

// metaEntry names the conda-meta record of a package in the layout
// cache. The record follows from the package's part of the layout and
// its repodata record (the layout key covers both, and the prefix and
// hardlinks), how each path was written, which of its paths a later
// package replaces, and its requested spec.
func (in *installer) metaEntry(ps *pkgState, layoutKey string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%v\x00", metaCacheVersion, layoutKey, ps.pkg.RequestedSpec, ps.lost)
	// How each path was installed (linked, copied, patched) shows in the
	// record; a package directory whose files changed modes changes it.
	methods := make([]byte, len(ps.items))
	for i, it := range ps.items {
		methods[i] = byte(it.method)
	}
	h.Write(methods)
	k := hex.EncodeToString(h.Sum(nil))
	return filepath.Join(in.opts.LayoutCache, "meta", k[:2], k+".json")
}

// prefixRecord is the conda-meta record of a package: its repodata record
// plus what was installed and from where. The package directories are named
// as they would be on a machine using the environment (<prefix>/pkgs/<dist>)
// rather than where they were on the building one, so the record does not
// depend on the build machine.
func (in *installer) prefixRecord(ps *pkgState) map[string]any {
	r := ps.rec
	m := map[string]any{
		"name":         r.Name,
		"version":      r.Version,
		"build":        r.Build,
		"build_number": r.BuildNumber,
		"depends":      nonNil(r.Depends),
		"constrains":   nonNil(r.Constrains),
	}
	setString := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	setString("license", r.License)
	setString("license_family", r.LicenseFamily)
	setString("md5", r.MD5)
	setString("sha256", r.SHA256)
	setString("subdir", r.Subdir)
	setString("noarch", r.Noarch)
	setString("url", r.URL)
	setString("channel", r.Channel)
	setString("track_features", r.TrackFeatures)
	setString("features", r.Features)
	setString("python_site_packages_path", r.PythonSitePackagesPath)
	if r.Size > 0 {
		m["size"] = r.Size
	}
	if r.Timestamp > 0 {
		m["timestamp"] = r.Timestamp
	}
	fn := r.FileName
	if fn == "" && r.URL != "" {
		if u, err := url.Parse(r.URL); err == nil {
			fn = path.Base(u.Path)
		}
	}
	pkgDir := in.prefix + "/pkgs/" + ps.dist
	setString("fn", fn)
	if fn != "" && validNamePart(fn) {
		m["package_tarball_full_path"] = in.prefix + "/pkgs/" + fn
	}
	m["extracted_package_dir"] = pkgDir
	m["requested_spec"] = ps.pkg.RequestedSpec
	specs := []string{}
	if ps.pkg.RequestedSpec != "" {
		specs = append(specs, ps.pkg.RequestedSpec)
	}
	m["requested_specs"] = specs

	linkType := linkTypeCopy
	files := make([]string, 0, len(ps.items))
	paths := make([]pathRec, 0, len(ps.items))
	seen := map[string]bool{}
	// Items are walked last first so that a path listed twice by one
	// package is described by the entry that was installed.
	for i := len(ps.items) - 1; i >= 0; i-- {
		it := ps.items[i]
		if seen[it.dest] {
			continue
		}
		seen[it.dest] = true
		if it.method == methodLinked {
			linkType = linkTypeHardlink
		}
		files = append(files, it.dest)
		paths = append(paths, pathRecord(it))
	}
	sort.Strings(files)
	sort.Slice(paths, func(i, j int) bool { return paths[i].Path < paths[j].Path })
	m["files"] = files
	m["paths_data"] = map[string]any{"paths_version": 1, "paths": paths}
	m["link"] = map[string]any{"source": pkgDir, "type": linkType}
	return m
}

// pathRec is one entry of a conda-meta record's paths_data. Its fields are
// in key order and absent ones omitted, so it encodes as the sorted map
// conda writes.
type pathRec struct {
	Path              string `json:"_path"`
	FileMode          string `json:"file_mode,omitempty"`
	NoLink            bool   `json:"no_link,omitempty"`
	PathType          string `json:"path_type"`
	PrefixPlaceholder string `json:"prefix_placeholder,omitempty"`
	SHA256            string `json:"sha256,omitempty"`
	SHA256InPrefix    string `json:"sha256_in_prefix,omitempty"`
	Size              *int64 `json:"size_in_bytes,omitempty"`
}

func pathRecord(it *item) pathRec {
	e := it.entry
	p := pathRec{Path: it.dest}
	switch it.kind {
	case kindDir:
		p.PathType = string(pkg.PathDirectory)
		return p
	case kindEntryPoint:
		p.PathType = pathPythonEntryPoint
	case kindSymlink:
		p.PathType = string(pkg.PathSoftlink)
	default:
		p.PathType = string(pkg.PathHardlink)
	}
	p.SHA256 = e.SHA256
	if p.SHA256 == "" {
		p.SHA256 = it.sha256
	}
	// Files replaced by a later package were not installed: only what the
	// package shipped is known about them.
	p.SHA256InPrefix = it.sha256InPrefix
	switch {
	case it.method != methodNone && it.method != methodSymlink:
		n := it.sizeInPrefix
		p.Size = &n
	case e.SHA256 != "" || e.Size > 0:
		n := e.Size
		p.Size = &n
	}
	if e.PrefixPlaceholder != "" {
		p.PrefixPlaceholder = e.PrefixPlaceholder
		p.FileMode = string(e.FileMode)
	}
	p.NoLink = e.NoLink
	return p
}

// history is conda-meta/history: one block for this install. Its time is
// the newest package timestamp, not the clock, so that it is reproducible.
func (in *installer) history() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "==> %s <==\n", in.fixed.Format("2006-01-02 15:04:05"))
	cmd := in.opts.History
	if cmd == "" {
		cmd = "sparkenv install"
	}
	cmd = strings.NewReplacer("\n", " ", "\r", " ").Replace(cmd)
	fmt.Fprintf(&b, "# cmd: %s\n", cmd)
	var specs []string
	for _, ps := range in.pkgs {
		b.WriteString("+")
		if ch := channelName(ps.rec.Channel); ch != "" {
			b.WriteString(ch)
			if ps.rec.Subdir != "" {
				b.WriteString("/" + ps.rec.Subdir)
			}
			b.WriteString("::")
		}
		b.WriteString(ps.dist + "\n")
		if s := ps.pkg.RequestedSpec; s != "" {
			specs = append(specs, "'"+strings.NewReplacer("'", "", "\n", " ").Replace(s)+"'")
		}
	}
	if len(specs) > 0 {
		fmt.Fprintf(&b, "# update specs: [%s]\n", strings.Join(specs, ", "))
	}
	return b.Bytes()
}

// channelName is how history names a channel: the name for channels on
// conda.anaconda.org, the URL for others.
func channelName(ch string) string {
	ch = strings.TrimRight(ch, "/")
	if u, err := url.Parse(ch); err == nil && u.Host == "conda.anaconda.org" {
		return strings.Trim(u.Path, "/")
	}
	return ch
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// encodeJSON writes v as json.Encoder with SetEscapeHTML(false) and
// SetIndent("", "  ") writes it (map keys sorted, a final newline), for
// the values a conda-meta record holds: strings, integers, booleans, nil,
// string lists, path records and maps of those. conda-meta of a large
// environment is megabytes of path records; this writes them without
// reflection or a second pass to indent, into a buffer of sizeHint bytes
// to start with.
func encodeJSON(v any, sizeHint int) ([]byte, error) {
	b, err := appendJSON(make([]byte, 0, sizeHint), v, 0)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func appendIndent(b []byte, depth int) []byte {
	b = append(b, '\n')
	for range depth {
		b = append(b, ' ', ' ')
	}
	return b
}

func appendJSON(b []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case []string:
		return appendArray(b, v, depth, func(b []byte, s *string, _ int) []byte { return appendJSONString(b, *s) }), nil
	case []pathRec:
		return appendArray(b, v, depth, func(b []byte, p *pathRec, depth int) []byte { return p.appendJSON(b, depth) }), nil
	case map[string]any:
		if v == nil {
			return append(b, "null"...), nil
		}
		if len(v) == 0 {
			return append(b, "{}"...), nil
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendIndent(b, depth+1)
			b = appendJSONString(b, k)
			b = append(b, ':', ' ')
			var err error
			if b, err = appendJSON(b, v[k], depth+1); err != nil {
				return nil, err
			}
		}
		return append(appendIndent(b, depth), '}'), nil
	}
	return nil, fmt.Errorf("conda-meta: cannot encode a %T", v)
}

// appendArray writes a list, one element per line, as encoding/json
// indents it: null for nil, [] when empty.
func appendArray[T any](b []byte, v []T, depth int, elem func(b []byte, e *T, depth int) []byte) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	if len(v) == 0 {
		return append(b, "[]"...)
	}
	b = append(b, '[')
	for i := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendIndent(b, depth+1)
		b = elem(b, &v[i], depth+1)
	}
	return append(appendIndent(b, depth), ']')
}

// appendJSON writes the record as encoding/json writes the struct, its
// fields in order, absent ones omitted.
func (p *pathRec) appendJSON(b []byte, depth int) []byte {
	b = append(b, '{')
	field := func(name string) {
		if b[len(b)-1] != '{' {
			b = append(b, ',')
		}
		b = appendIndent(b, depth+1)
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':', ' ')
	}
	field("_path")
	b = appendJSONString(b, p.Path)
	if p.FileMode != "" {
		field("file_mode")
		b = appendJSONString(b, p.FileMode)
	}
	if p.NoLink {
		field("no_link")
		b = append(b, "true"...)
	}
	field("path_type")
	b = appendJSONString(b, p.PathType)
	if p.PrefixPlaceholder != "" {
		field("prefix_placeholder")
		b = appendJSONString(b, p.PrefixPlaceholder)
	}
	if p.SHA256 != "" {
		field("sha256")
		b = appendJSONString(b, p.SHA256)
	}
	if p.SHA256InPrefix != "" {
		field("sha256_in_prefix")
		b = appendJSONString(b, p.SHA256InPrefix)
	}
	if p.Size != nil {
		field("size_in_bytes")
		b = strconv.AppendInt(b, *p.Size, 10)
	}
	return append(appendIndent(b, depth), '}')
}

// appendJSONString quotes s as encoding/json does without HTML escaping:
// control characters escaped (\b, \f, \n, \r, \t by name), invalid
// UTF-8 replaced by U+FFFD, and U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\\ufffd"...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
