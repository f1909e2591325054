package install

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/sparkenv/sparkenv/internal/conda/pkg"
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
	for _, ps := range in.pkgs {
		g.Go(func() error {
			b, err := encodeJSON(in.prefixRecord(ps))
			if err != nil {
				return fmt.Errorf("install: conda-meta of %s: %w", ps.dist, err)
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

// encodeJSON writes v with sorted keys (maps encode sorted), two-space
// indentation and no HTML escaping: what json.Encoder with SetIndent("",
// "  ") writes, indented by a single pass over the compact encoding.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	compact := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	out := indentJSON(make([]byte, 0, len(compact)*3/2), compact)
	return append(out, '\n'), nil
}

// indentJSON appends src, compact JSON (no whitespace outside strings), to
// dst with two-space indentation, empty arrays and objects kept as [] and
// {}, as json.Indent writes them.
func indentJSON(dst, src []byte) []byte {
	depth := 0
	newline := func() {
		dst = append(dst, '\n')
		for range depth {
			dst = append(dst, ' ', ' ')
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch c {
		case '"':
			// Copy the string whole, escapes included.
			j := i + 1
			for j < len(src) && src[j] != '"' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			dst = append(dst, src[i:min(j+1, len(src))]...)
			i = j
		case '{', '[':
			if i+1 < len(src) && (src[i+1] == '}' || src[i+1] == ']') {
				dst = append(dst, c, src[i+1])
				i++
				continue
			}
			dst = append(dst, c)
			depth++
			newline()
		case '}', ']':
			depth--
			newline()
			dst = append(dst, c)
		case ',':
			dst = append(dst, c)
			newline()
		case ':':
			dst = append(dst, ':', ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
