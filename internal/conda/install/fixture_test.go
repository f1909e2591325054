package install

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sparkenv/sparkenv/internal/conda/pkg"
	"github.com/sparkenv/sparkenv/internal/conda/repodata"
)

// fixtureTime is the mtime of every file of an extracted fixture package,
// as an extractor that keeps archive times would leave it.
var fixtureTime = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// fileSpec is one path of a fixture package.
type fileSpec struct {
	path        string
	data        string
	exec        bool
	link        string // softlink target
	dir         bool   // an empty directory entry
	placeholder string
	binary      bool
	noLink      bool
}

// pkgSpec is a fixture package, written as an extracted package directory.
type pkgSpec struct {
	name, version, build string
	subdir               string
	noarch               string
	timestamp            int64
	depends              []string
	files                []fileSpec
	entryPoints          []string
	legacy               bool // info/files + info/has_prefix instead of paths.json
	extraIndex           map[string]any
}

func sha256Of(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// makePkg writes spec as an extracted package below root and returns it as
// an Install input.
func makePkg(t testing.TB, root string, spec pkgSpec) Package {
	t.Helper()
	if spec.version == "" {
		spec.version = "1.0"
	}
	if spec.build == "" {
		spec.build = "h0_0"
	}
	if spec.subdir == "" {
		spec.subdir = "linux-64"
		if spec.noarch != "" {
			spec.subdir = "noarch"
		}
	}
	if spec.timestamp == 0 {
		spec.timestamp = 1700000000000
	}
	if spec.depends == nil {
		spec.depends = []string{}
	}
	dist := spec.name + "-" + spec.version + "-" + spec.build
	dir := filepath.Join(root, dist)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel, data string, mode fs.FileMode) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, []byte(data), mode))
	}
	var paths []map[string]any
	var files, hasPrefix, noLink []string
	for _, f := range spec.files {
		e := map[string]any{"_path": f.path}
		p := filepath.Join(dir, filepath.FromSlash(f.path))
		switch {
		case f.dir:
			must(os.MkdirAll(p, 0o755))
			e["path_type"] = "directory"
		case f.link != "":
			must(os.MkdirAll(filepath.Dir(p), 0o755))
			must(os.Symlink(f.link, p))
			e["path_type"] = "softlink"
			e["sha256"] = sha256Of(f.link)
			e["size_in_bytes"] = len(f.link)
		default:
			mode := fs.FileMode(0o644)
			if f.exec {
				mode = 0o755
			}
			write(f.path, f.data, mode)
			must(os.Chtimes(p, fixtureTime, fixtureTime))
			e["path_type"] = "hardlink"
			e["sha256"] = sha256Of(f.data)
			e["size_in_bytes"] = len(f.data)
		}
		if f.placeholder != "" {
			e["prefix_placeholder"] = f.placeholder
			mode := "text"
			if f.binary {
				mode = "binary"
			}
			e["file_mode"] = mode
			if f.placeholder == legacyPlaceholderForTest() && !f.binary {
				hasPrefix = append(hasPrefix, f.path)
			} else {
				hasPrefix = append(hasPrefix, fmt.Sprintf("%s %s %s", f.placeholder, mode, f.path))
			}
		}
		if f.noLink {
			e["no_link"] = true
			noLink = append(noLink, f.path)
		}
		paths = append(paths, e)
		if !f.dir {
			files = append(files, f.path)
		}
	}
	index := map[string]any{
		"name": spec.name, "version": spec.version, "build": spec.build,
		"build_number": 0, "depends": spec.depends, "subdir": spec.subdir,
		"timestamp": spec.timestamp, "license": "MIT",
	}
	if spec.noarch != "" {
		index["noarch"] = spec.noarch
	}
	for k, v := range spec.extraIndex {
		index[k] = v
	}
	j := func(v any) string {
		b, err := json.MarshalIndent(v, "", "  ")
		must(err)
		return string(b)
	}
	write("info/index.json", j(index), 0o644)
	if spec.legacy {
		write("info/files", strings.Join(files, "\n")+"\n", 0o644)
		if len(hasPrefix) > 0 {
			write("info/has_prefix", strings.Join(hasPrefix, "\n")+"\n", 0o644)
		}
		if len(noLink) > 0 {
			write("info/no_link", strings.Join(noLink, "\n")+"\n", 0o644)
		}
	} else {
		write("info/paths.json", j(map[string]any{"paths_version": 1, "paths": paths}), 0o644)
	}
	if spec.noarch != "" {
		write("info/link.json", j(map[string]any{
			"package_metadata_version": 1,
			"noarch":                   map[string]any{"type": spec.noarch, "entry_points": spec.entryPoints},
		}), 0o644)
	}
	rec := repodata.Record{
		Name: spec.name, Version: spec.version, Build: spec.build, Depends: spec.depends,
		Subdir: spec.subdir, Timestamp: spec.timestamp, Noarch: spec.noarch, License: "MIT",
		MD5:      strings.Repeat("a", 32),
		SHA256:   sha256Of(dist),
		Size:     1234,
		FileName: dist + ".conda",
		Channel:  "https://conda.anaconda.org/conda-forge",
		URL:      "https://conda.anaconda.org/conda-forge/" + spec.subdir + "/" + dist + ".conda",
	}
	return Package{Record: rec, Dir: dir, RequestedSpec: spec.name}
}

func legacyPlaceholderForTest() string { return pkg.LegacyPlaceholder() }

// placeholder255 is a conda-build style placeholder: a build prefix padded
// to 255 characters.
func placeholder255() string {
	p := "/home/builder/conda-bld/pkg_1700000000000/_h_env"
	for len(p) < 255 {
		p += "_placehold"
	}
	return p[:255]
}

// treeDigest describes every entry below root: path, type, mode, mtime,
// link target and content hash, one per line, sorted.
func treeDigest(t testing.TB, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %s %d", filepath.ToSlash(rel), fi.Mode(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += " " + sha256Of(string(b))
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// readMeta reads conda-meta/<dist>.json of an installed environment.
func readMeta(t testing.TB, env, dist string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(env, "conda-meta", dist+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("conda-meta/%s.json: %v", dist, err)
	}
	return m
}
