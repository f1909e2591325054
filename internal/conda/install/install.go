package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/sparkenv/sparkenv/internal/conda/pkg"
	"github.com/sparkenv/sparkenv/internal/conda/repodata"
)

// Package is one extracted package to install.
type Package struct {
	// Record is the repodata record the package was chosen by (from the lock
	// or the channel index); it wins over info/index.json, which only fills
	// the fields it lacks. A zero Record means "use info/index.json".
	Record repodata.Record
	// Dir is the extracted package directory (info/ plus payload).
	Dir string
	// RequestedSpec is the MatchSpec that asked for the package, if any.
	RequestedSpec string
}

// Options tune Install.
type Options struct {
	// TargetPrefix is the absolute path the environment will live at, which
	// placeholders and shebangs are patched for. Empty means the staging
	// directory itself.
	TargetPrefix string
	// Jobs is how many files are written at once; <= 0 picks a default.
	Jobs int
	// AllowHardlinks hardlinks files that need no patching from the
	// extracted directory when the file system allows it. The extracted
	// directory must then never be modified.
	AllowHardlinks bool
	// History is the `# cmd:` line of conda-meta/history.
	History string
	// Log receives a summary and warnings; may be nil.
	Log io.Writer
	// LayoutCache is a directory where Layout keeps each package's part
	// of a layout for the target prefix, and reads it back in a later
	// Layout instead of the package's paths.json and files. Empty: no
	// cache. Install does not use it.
	LayoutCache string
}

// Report says what Install did.
type Report struct {
	Files   int   // regular files and symlinks installed (conda-meta excluded)
	Bytes   int64 // bytes of the regular files installed
	Linked  int   // files hardlinked from the extracted packages
	Copied  int   // files copied unchanged
	Patched int   // files copied with a prefix placeholder replaced
	// LinkScripts are the prefix-relative paths of pre-link, post-link and
	// pre-unlink scripts (bin/.<name>-<action>.sh), installed but not run.
	LinkScripts []string
	// Clobbered lists the paths written by more than one package.
	Clobbered []Clobber
}

// Clobber is a path that two packages install: like conda, the package
// installed later wins.
type Clobber struct {
	Path     string // prefix-relative
	Previous string // name-version-build of the package whose file was replaced
	Winner   string // name-version-build of the package whose file is installed
}

// link types of conda-meta (conda's LinkType).
const (
	linkTypeHardlink = 1
	linkTypeCopy     = 3
)

type itemKind int

const (
	kindFile itemKind = iota
	kindSymlink
	kindDir
	kindEntryPoint
)

// how a file ended up in the prefix.
type method int

const (
	methodNone method = iota
	methodLinked
	methodCopied
	methodPatched
	methodGenerated
	methodSymlink
)

// item is one path of one package: what to write, and what was written.
type item struct {
	pkg    int
	kind   itemKind
	entry  pkg.PathsEntry
	dest   string // prefix-relative path after noarch mapping
	phys   string // dest with its parents resolved through planned symlinks
	target string // symlink target
	data   []byte // generated content

	// Results, written only by the worker that owns the item.
	method         method
	sha256         string // of the packaged file, computed when paths.json lacks it
	sha256InPrefix string
	sizeInPrefix   int64
	mode           fs.FileMode // permission bits of a file
	source         string      // host file with the bytes (the written one, or the package's in a layout)
	shared         bool        // in a layout: source is the package's own file
	done           bool        // read from the layout cache: nothing to write
	won            bool        // installed: no later item replaces it
}

type pkgState struct {
	pkg   Package
	info  *pkgInfo
	rec   repodata.Record
	dist  string
	items []*item
	// meta is the conda-meta record in the layout cache, if it is there.
	meta string
	// lost are the indices in items of the paths a later item replaces.
	lost []int
	// cached holds the package's items read from the layout cache, whose
	// info has no paths; nil when the package is read from info/.
	cached []item
}

type installer struct {
	opts   Options
	prefix string // TargetPrefix
	tmp    string
	pkgs   []*pkgState
	python *pythonLayout
	fixed  time.Time // mtime of every generated or changed file, and of directories
	report Report
	dirs   []string
	// virtual lays out without copying: files installed unchanged stay
	// where they are in the package directories (see Layout).
	virtual bool
	// keys are the layout cache keys of the packages, nil without a cache.
	keys []string
}

// Install lays out the environment made of pkgs (in install order,
// dependencies first) at stagingDir, which must be empty or absent. Files are
// patched for opts.TargetPrefix. On error nothing is left at stagingDir.
func Install(ctx context.Context, stagingDir string, pkgs []Package, opts Options) (rep *Report, err error) {
	dest, err := filepath.Abs(stagingDir)
	if err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	if err := checkEmpty(dest); err != nil {
		return nil, err
	}
	prefix := opts.TargetPrefix
	if prefix == "" {
		prefix = dest
	}
	in, winners, err := prepare(ctx, pkgs, opts, prefix, false)
	if err != nil {
		return nil, err
	}

	parent := filepath.Dir(dest)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	base := filepath.Base(dest)
	if len(base) > 64 {
		base = base[:64]
	}
	in.tmp, err = os.MkdirTemp(parent, "."+base+".install-*")
	if err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(in.tmp)
		}
	}()
	if err := in.write(ctx, winners); err != nil {
		return nil, err
	}
	if err := in.writeMeta(); err != nil {
		return nil, err
	}
	if err := in.finishDirs(); err != nil {
		return nil, err
	}
	// rename(2) replaces an empty directory in one step; os.Rename refuses
	// to replace any directory.
	if err := unix.Rename(in.tmp, dest); err != nil {
		return nil, fmt.Errorf("install: move environment into %s: %w", dest, err)
	}
	if err := syncDir(parent); err != nil {
		os.RemoveAll(dest)
		return nil, err
	}
	in.logf("installed %d packages into %s (prefix %s): %d files, %d bytes; %d linked, %d copied, %d patched",
		len(pkgs), dest, in.prefix, in.report.Files, in.report.Bytes, in.report.Linked, in.report.Copied, in.report.Patched)
	return &in.report, nil
}

// prepare reads the packages and plans the tree for prefix: the items to
// write, in install order.
func prepare(ctx context.Context, pkgs []Package, opts Options, prefix string, virtual bool) (*installer, []*item, error) {
	in := &installer{opts: opts, prefix: prefix, virtual: virtual}
	if err := checkPrefix(in.prefix); err != nil {
		return nil, nil, err
	}
	if in.opts.Jobs <= 0 {
		in.opts.Jobs = max(4, 4*runtime.GOMAXPROCS(0))
	}
	if err := in.load(ctx, pkgs); err != nil {
		return nil, nil, err
	}
	winners, err := in.plan()
	if err != nil {
		return nil, nil, err
	}
	return in, winners, nil
}

func checkEmpty(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("install: %s exists and is not a directory", dir)
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	defer f.Close()
	if names, _ := f.Readdirnames(1); len(names) > 0 {
		return fmt.Errorf("install: %s is not empty; install only into an empty or absent directory", dir)
	}
	return nil
}

func checkPrefix(p string) error {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" || strings.ContainsAny(p, "\x00\n\r") {
		return fmt.Errorf("install: target prefix %q must be a clean absolute path other than /", p)
	}
	return nil
}

func (in *installer) logf(format string, args ...any) {
	if in.opts.Log != nil {
		fmt.Fprintf(in.opts.Log, format+"\n", args...)
	}
}

// load reads info/ of every package, in parallel, and merges the records.
func (in *installer) load(ctx context.Context, pkgs []Package) error {
	in.pkgs = make([]*pkgState, len(pkgs))
	in.keys = in.cacheKeys(pkgs)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(in.opts.Jobs)
	for i, p := range pkgs {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			var info *pkgInfo
			var cached []item
			if in.keys != nil {
				info, cached, _ = readRecord(in.cacheEntry(in.keys[i]), filepath.Clean(p.Dir))
			}
			if info == nil {
				var err error
				if info, err = readInfo(p.Dir); err != nil {
					return fmt.Errorf("install: package %s: %w", p.Dir, err)
				}
			}
			rec, err := mergeRecord(p.Record, info.Index)
			if err != nil {
				return fmt.Errorf("install: package %s: %w", p.Dir, err)
			}
			in.pkgs[i] = &pkgState{pkg: p, info: info, rec: rec, dist: rec.DistName(), cached: cached}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	seen := map[string]bool{}
	var newest int64
	var python *pkgState
	for _, ps := range in.pkgs {
		if seen[ps.rec.Name] {
			return fmt.Errorf("install: package %s is listed twice", ps.rec.Name)
		}
		seen[ps.rec.Name] = true
		newest = max(newest, ps.rec.Timestamp)
		if ps.rec.Name == "python" {
			python = ps
		}
	}
	in.fixed = time.UnixMilli(newest).UTC().Truncate(time.Second)
	if python != nil {
		l, err := newPythonLayout(python.rec.Version, python.rec.PythonSitePackagesPath)
		if err != nil {
			return fmt.Errorf("install: package %s: %w", python.dist, err)
		}
		in.python = l
	}
	return nil
}

// mergeRecord takes the repodata record (which may carry patched depends)
// and fills what it lacks from index.json. Both must name the same package.
func mergeRecord(rec, index repodata.Record) (repodata.Record, error) {
	if rec.Name == "" {
		rec = index
	} else {
		if rec.Name != index.Name || rec.Version != index.Version || rec.Build != index.Build {
			return rec, fmt.Errorf("record %s does not match info/index.json %s", rec.DistName(), index.DistName())
		}
		if rec.BuildNumber == 0 {
			rec.BuildNumber = index.BuildNumber
		}
		if rec.Depends == nil {
			rec.Depends = index.Depends
		}
		if rec.Constrains == nil {
			rec.Constrains = index.Constrains
		}
		fill := func(dst *string, src string) {
			if *dst == "" {
				*dst = src
			}
		}
		fill(&rec.License, index.License)
		fill(&rec.LicenseFamily, index.LicenseFamily)
		fill(&rec.Subdir, index.Subdir)
		fill(&rec.Noarch, index.Noarch)
		fill(&rec.TrackFeatures, index.TrackFeatures)
		fill(&rec.Features, index.Features)
		fill(&rec.PythonSitePackagesPath, index.PythonSitePackagesPath)
		if rec.Timestamp == 0 {
			rec.Timestamp = index.Timestamp
		}
	}
	for what, s := range map[string]string{"name": rec.Name, "version": rec.Version, "build": rec.Build} {
		if !validNamePart(s) {
			return rec, fmt.Errorf("%s %q cannot be used in a file name", what, s)
		}
	}
	if rec.Depends == nil {
		rec.Depends = []string{}
	}
	return rec, nil
}

// validNamePart reports whether s can be part of conda-meta/<name>-<version>-<build>.json.
func validNamePart(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.Contains(s, "..") &&
		!strings.ContainsAny(s, "/\\\x00\n\r") && !strings.HasPrefix(s, ".")
}

// plan lists every path of every package, maps noarch paths, resolves
// clobbering (the later package wins), and checks that the result is a
// tree: no file below a file, no link leaving the prefix. It returns the
// items to write, in install order.
func (in *installer) plan() ([]*item, error) {
	n := 0
	for _, ps := range in.pkgs {
		n += len(ps.cached) + len(ps.info.Paths) + len(ps.info.EntryPoints)
	}
	logical := make(map[string]*item, n) // dest → winner
	order := make([]*item, 0, n)         // every file-like item, in precedence order
	var dirs []*item
	for pi, ps := range in.pkgs {
		noarchPython := ps.info.NoarchType == "python" || ps.rec.Noarch == "python"
		if noarchPython && in.python == nil {
			return nil, fmt.Errorf("install: package %s is noarch: python but no python package is being installed", ps.dist)
		}
		add := func(it *item) error {
			if !validRelPath(it.dest) {
				return fmt.Errorf("install: package %s: path %q is not a relative path inside the prefix", ps.dist, it.dest)
			}
			if it.dest == "conda-meta" || strings.HasPrefix(it.dest, "conda-meta/") {
				return fmt.Errorf("install: package %s: path %s is inside conda-meta/, which belongs to the installer", ps.dist, it.dest)
			}
			it.pkg = pi
			ps.items = append(ps.items, it)
			if it.kind == kindDir {
				dirs = append(dirs, it)
				return nil
			}
			if prev, ok := logical[it.dest]; ok && prev.pkg != pi {
				in.clobber(it.dest, prev, it)
			}
			logical[it.dest] = it
			order = append(order, it)
			return nil
		}
		if ps.cached != nil {
			// Read back from the layout cache: checked when it was stored,
			// and written already.
			for i := range ps.cached {
				it := &ps.cached[i]
				it.pkg, it.done = pi, true
				if it.shared {
					it.method = methodCopied
					if in.opts.AllowHardlinks && !it.entry.NoLink {
						it.method = methodLinked
					}
				}
				ps.items = append(ps.items, it)
				if it.kind == kindDir {
					dirs = append(dirs, it)
					continue
				}
				if prev, ok := logical[it.dest]; ok && prev.pkg != pi {
					in.clobber(it.dest, prev, it)
				}
				logical[it.dest] = it
				order = append(order, it)
				if linkScript(it.dest, ps.rec.Name) {
					in.report.LinkScripts = append(in.report.LinkScripts, it.dest)
					in.logf("warning: %s of package %s is installed but not run", it.dest, ps.dist)
				}
			}
			continue
		}
		for _, e := range ps.info.Paths {
			src := e.Path
			if e.PathType == pkg.PathDirectory {
				src = strings.TrimSuffix(src, "/")
			}
			if !validRelPath(src) {
				return nil, fmt.Errorf("install: package %s: path %q is not a relative path inside the package", ps.dist, e.Path)
			}
			e.Path = src
			it := &item{entry: e, dest: src}
			if noarchPython {
				it.dest = in.python.noarchPythonPath(src)
			}
			switch e.PathType {
			case pkg.PathDirectory:
				it.kind = kindDir
			case pkg.PathSoftlink:
				it.kind = kindSymlink
				target, err := os.Readlink(filepath.Join(ps.pkg.Dir, filepath.FromSlash(src)))
				if err != nil {
					// Some extractors materialise links as files; install
					// what is there rather than fail.
					fi, serr := os.Lstat(filepath.Join(ps.pkg.Dir, filepath.FromSlash(src)))
					if serr != nil || !fi.Mode().IsRegular() {
						return nil, fmt.Errorf("install: package %s: softlink %s: %w", ps.dist, src, err)
					}
					it.kind = kindFile
				}
				it.target = target
			default:
				it.kind = kindFile
			}
			if err := add(it); err != nil {
				return nil, err
			}
			if linkScript(it.dest, ps.rec.Name) {
				in.report.LinkScripts = append(in.report.LinkScripts, it.dest)
				in.logf("warning: %s of package %s is installed but not run", it.dest, ps.dist)
			}
		}
		if noarchPython {
			for _, s := range ps.info.EntryPoints {
				ep, err := parseEntryPoint(s)
				if err != nil {
					return nil, fmt.Errorf("install: package %s: %w", ps.dist, err)
				}
				interp := in.prefix + "/" + in.python.interpreter()
				it := &item{kind: kindEntryPoint, dest: "bin/" + ep.Command, data: ep.script(interp, in.prefix)}
				if err := add(it); err != nil {
					return nil, err
				}
			}
		}
	}

	// Directory symlinks may be parents of other paths: resolve those
	// parents so that nothing is ever written through a link.
	links := map[string]*item{}
	for dest, it := range logical {
		if it.kind == kindSymlink {
			links[dest] = it
		}
	}
	physical := make(map[string]*item, len(logical))
	winners := make([]*item, 0, len(logical))
	for _, it := range order {
		if logical[it.dest] != it {
			continue
		}
		phys, err := in.resolve(it.dest, links)
		if err != nil {
			return nil, fmt.Errorf("install: package %s: %w", in.pkgs[it.pkg].dist, err)
		}
		it.phys = phys
		if prev, ok := physical[phys]; ok {
			if prev.pkg != it.pkg {
				in.clobber(phys, prev, it)
			}
			prev.phys = "" // replaced
		}
		physical[phys] = it
		winners = append(winners, it)
	}
	kept := winners[:0]
	for _, it := range winners {
		if it.phys != "" && physical[it.phys] == it {
			kept = append(kept, it)
		}
	}
	winners = kept
	// An item read from the layout cache carries what was written for it
	// there; one that another package replaces here was not written.
	for _, it := range winners {
		it.won = true
	}
	for _, ps := range in.pkgs {
		for i, it := range ps.items {
			if it.kind == kindDir || it.won {
				continue
			}
			ps.lost = append(ps.lost, i)
			if ps.cached != nil {
				it.method, it.sha256, it.sha256InPrefix, it.sizeInPrefix, it.mode, it.source = methodNone, "", "", 0, 0, ""
			}
		}
	}

	dirSet := map[string]bool{}
	// addDir records dir and its parents, none of which may be a file or a
	// link; owner is the item that needs them.
	addDir := func(dir string, owner *item) error {
		for d := dir; d != "."; d = parentDir(d) {
			if leaf, ok := physical[d]; ok {
				return fmt.Errorf("install: %s of package %s needs %s to be a directory, but package %s installs a file there",
					owner.dest, in.pkgs[owner.pkg].dist, d, in.pkgs[leaf.pkg].dist)
			}
			if dirSet[d] {
				return nil
			}
			dirSet[d] = true
		}
		return nil
	}
	last := ""
	for _, it := range winners {
		// Paths of one package come in order: most share the last one's
		// directory, checked already.
		if d := parentDir(it.phys); d != last {
			if err := addDir(d, it); err != nil {
				return nil, err
			}
			last = d
		}
		if it.kind == kindSymlink {
			if err := in.checkLinkTarget(it); err != nil {
				return nil, fmt.Errorf("install: package %s: %w", in.pkgs[it.pkg].dist, err)
			}
		}
	}
	for _, it := range dirs {
		phys, err := in.resolve(it.dest, links)
		if err != nil {
			return nil, fmt.Errorf("install: package %s: %w", in.pkgs[it.pkg].dist, err)
		}
		it.phys = phys
		if _, ok := physical[phys]; ok {
			continue // a file or a link to a directory is already there
		}
		if err := addDir(phys, it); err != nil {
			return nil, err
		}
	}
	in.dirs = make([]string, 0, len(dirSet))
	for d := range dirSet {
		in.dirs = append(in.dirs, d)
	}
	// A parent sorts before its children, so creating in this order works.
	sort.Strings(in.dirs)
	return winners, nil
}

// parentDir is path.Dir for a clean relative path, without cleaning it
// again.
func parentDir(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

func (in *installer) clobber(p string, prev, next *item) {
	c := Clobber{Path: p, Previous: in.pkgs[prev.pkg].dist, Winner: in.pkgs[next.pkg].dist}
	in.report.Clobbered = append(in.report.Clobbered, c)
	in.logf("warning: %s is installed by both %s and %s; the file of %s is kept", p, c.Previous, c.Winner, c.Winner)
}

// linkDest resolves the target of a link at phys lexically to a
// prefix-relative path, and reports false when it leaves the prefix.
// Targets must be clean apart from leading "..": "a/../.." would be judged
// lexically but resolved by the kernel through a, which may be a link.
func (in *installer) linkDest(phys, target string) (string, bool) {
	if target == "" || strings.ContainsRune(target, 0) {
		return "", false
	}
	if strings.HasPrefix(target, "/") {
		if target == in.prefix {
			return ".", true
		}
		rest, ok := strings.CutPrefix(target, in.prefix+"/")
		if !ok {
			return "", false
		}
		target = rest
		phys = "x" // resolve from the prefix root
	}
	seenName := false
	for _, c := range strings.Split(target, "/") {
		switch {
		case c == "..":
			if seenName {
				return "", false
			}
		case c != "." && c != "":
			seenName = true
		}
	}
	r := path.Join(path.Dir(phys), target)
	if r == ".." || strings.HasPrefix(r, "../") {
		return "", false
	}
	return r, true
}

func (in *installer) checkLinkTarget(it *item) error {
	if _, ok := in.linkDest(it.phys, it.target); !ok {
		return fmt.Errorf("softlink %s -> %s points outside the prefix", it.dest, it.target)
	}
	return nil
}

// resolve replaces the parents of p that are planned symlinks by where they
// point, so that p names a real location below the prefix.
func (in *installer) resolve(p string, links map[string]*item) (string, error) {
	orig := p
	for hops := 0; ; hops++ {
		if hops > 40 {
			return "", fmt.Errorf("%s: too many levels of symbolic links", orig)
		}
		changed := false
		for i := 0; i < len(p); i++ {
			if p[i] != '/' {
				continue
			}
			l, ok := links[p[:i]]
			if !ok {
				continue
			}
			to, ok := in.linkDest(p[:i], l.target)
			if !ok {
				return "", fmt.Errorf("softlink %s -> %s points outside the prefix", l.dest, l.target)
			}
			if to == "." {
				p = p[i+1:]
			} else {
				p = to + p[i:]
			}
			changed = true
			break
		}
		if !changed {
			return p, nil
		}
	}
}
