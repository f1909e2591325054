package install

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

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
	for _, ps := range in.pkgs {
		b, err := encodeJSON(in.prefixRecord(ps))
		if err != nil {
			return fmt.Errorf("install: conda-meta of %s: %w", ps.dist, err)
		}
		if err := writeNew(filepath.Join(dir, ps.dist+".json"), b, 0o644, in.fixed); err != nil {
			return fmt.Errorf("install: conda-meta of %s: %w", ps.dist, err)
		}
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
	paths := make([]map[string]any, 0, len(ps.items))
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
	sort.Slice(paths, func(i, j int) bool { return paths[i]["_path"].(string) < paths[j]["_path"].(string) })
	m["files"] = files
	m["paths_data"] = map[string]any{"paths_version": 1, "paths": paths}
	m["link"] = map[string]any{"source": pkgDir, "type": linkType}
	return m
}

func pathRecord(it *item) map[string]any {
	e := it.entry
	p := map[string]any{"_path": it.dest}
	switch it.kind {
	case kindDir:
		p["path_type"] = string(pkg.PathDirectory)
		return p
	case kindEntryPoint:
		p["path_type"] = pathPythonEntryPoint
	case kindSymlink:
		p["path_type"] = string(pkg.PathSoftlink)
	default:
		p["path_type"] = string(pkg.PathHardlink)
	}
	sha := e.SHA256
	if sha == "" {
		sha = it.sha256
	}
	if sha != "" {
		p["sha256"] = sha
	}
	// Files replaced by a later package were not installed: only what the
	// package shipped is known about them.
	if it.sha256InPrefix != "" {
		p["sha256_in_prefix"] = it.sha256InPrefix
	}
	switch {
	case it.method != methodNone && it.method != methodSymlink:
		p["size_in_bytes"] = it.sizeInPrefix
	case e.SHA256 != "" || e.Size > 0:
		p["size_in_bytes"] = e.Size
	}
	if e.PrefixPlaceholder != "" {
		p["prefix_placeholder"] = e.PrefixPlaceholder
		p["file_mode"] = string(e.FileMode)
	}
	if e.NoLink {
		p["no_link"] = true
	}
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
// indentation and no HTML escaping.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
