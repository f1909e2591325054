// Package condamirror builds the "conda_mirror" target: a conda channel
// holding exactly the packages of some locked environments (or of an
// existing conda installation's package cache), byte-identical to the
// originals, with a complete index (repodata.json, .zst, optional CEP 16
// shards, channeldata.json, index.html). Published as a tree, it lets
// clusters without internet access install the environments with any
// conda client.
//
// The builder never changes a package file: a package whose bytes differ
// from what the lock recorded is an error, not a new record.
package condamirror

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/condaenv"
	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/conda/pkg"
	"github.com/sparkenv/sparkenv/internal/conda/repodata"
	"github.com/sparkenv/sparkenv/internal/condaindex"
	"github.com/sparkenv/sparkenv/internal/fsutil"
	"github.com/sparkenv/sparkenv/publishers"
)

// Kind is the target kind.
const Kind = "conda_mirror"

// Mutable lists the files of a mirror whose names do not change with their
// content; publishers write them after the packages and shards.
const Mutable = "repodata.json,repodata.json.zst," + repodata.ShardIndexFile + ",channeldata.json,index.html"

// Config is the body of a conda_mirror target block.
type Config struct {
	// Environments whose locked packages the mirror holds (their union).
	Environments []string `hcl:"environments,optional"`
	// Shards also writes the CEP 16 sharded index.
	Shards bool `hcl:"shards,optional"`
	// SourcePrefix captures the package cache (<prefix>/pkgs) of an
	// existing conda installation instead.
	SourcePrefix string `hcl:"source_prefix,optional"`
	// HTML writes an index.html per folder (default true).
	HTML *bool `hcl:"html,optional"`
}

// Builder builds conda mirrors.
type Builder struct{}

var (
	_ builders.Builder       = (*Builder)(nil)
	_ builders.Validator     = (*Builder)(nil)
	_ builders.InputDeclarer = (*Builder)(nil)
)

// New returns the conda_mirror builder.
func New() *Builder { return &Builder{} }

func (*Builder) Kind() string    { return Kind }
func (*Builder) Version() string { return "1" }
func (*Builder) NewConfig() any  { return &Config{} }

// Validate checks the configuration.
func (*Builder) Validate(cfg any, baseDir string) error {
	c := cfg.(*Config)
	switch {
	case len(c.Environments) == 0 && c.SourcePrefix == "":
		return fmt.Errorf("a conda_mirror needs its packages: set environments = [environment.<name>, ...] or source_prefix = \"/opt/conda\"")
	case len(c.Environments) > 0 && c.SourcePrefix != "":
		return fmt.Errorf("environments and source_prefix cannot both be set: a mirror is built either from locked environments or from a conda installation's package cache")
	}
	seen := map[string]bool{}
	for _, e := range c.Environments {
		if !strings.HasPrefix(e, "environment.") {
			return fmt.Errorf("environments: %q is not an environment (write environment.<name>)", e)
		}
		if seen[e] {
			return fmt.Errorf("environments: %s is listed twice", e)
		}
		seen[e] = true
	}
	return nil
}

// Inputs lists, in capture mode, the package archives of the installation's
// package cache, its urls.txt and the channel records conda kept beside
// the extracted packages: the mirror is rebuilt when any changes.
func (*Builder) Inputs(cfg any, baseDir string) ([]string, error) {
	c := cfg.(*Config)
	if c.SourcePrefix == "" {
		return nil, nil
	}
	l, err := listCache(sourcePrefix(c, baseDir))
	if err != nil {
		return nil, err
	}
	out := append([]string(nil), l.archives...)
	if l.urls != "" {
		out = append(out, l.urls)
	}
	for _, r := range l.records {
		out = append(out, r)
	}
	sort.Strings(out)
	return out, nil
}

func sourcePrefix(c *Config, baseDir string) string {
	p := c.SourcePrefix
	if !filepath.IsAbs(p) {
		p = filepath.Join(baseDir, p)
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return filepath.Clean(p)
}

// cacheListing is what a conda package cache holds that a mirror uses.
type cacheListing struct {
	archives []string // sorted
	urls     string   // urls.txt, or ""
	// records maps an archive to the repodata_record.json conda wrote into
	// its extracted folder: the channel's record, with the channel's
	// metadata patches, which info/index.json does not have.
	records map[string]string
}

func listCache(prefix string) (*cacheListing, error) {
	dir := filepath.Join(prefix, "pkgs")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("source_prefix %s: %w", prefix, err)
	}
	l := &cacheListing{records: map[string]string{}}
	for _, e := range ents {
		if e.Name() == "urls.txt" && e.Type().IsRegular() {
			l.urls = filepath.Join(dir, e.Name())
		}
		if !e.Type().IsRegular() || !condaindex.IsPackageFile(e.Name()) {
			continue
		}
		archive := filepath.Join(dir, e.Name())
		l.archives = append(l.archives, archive)
		rec := filepath.Join(dir, repodata.Stem(e.Name()), "info", "repodata_record.json")
		if fi, err := os.Lstat(rec); err == nil && fi.Mode().IsRegular() {
			l.records[archive] = rec
		}
	}
	sort.Strings(l.archives)
	return l, nil
}

// Build copies the packages into the output and indexes them.
func (b *Builder) Build(ctx context.Context, req *builders.Request) (*builders.Result, error) {
	c := req.Config.(*Config)
	if err := b.Validate(c, req.BaseDir); err != nil {
		return nil, err
	}
	log := logOf(req)
	var pkgs []condaindex.Package
	var err error
	if c.SourcePrefix != "" {
		pkgs, err = capture(ctx, req, sourcePrefix(c, req.BaseDir))
	} else {
		pkgs, err = mirrorEnvironments(ctx, req, c.Environments)
	}
	if err != nil {
		return nil, err
	}
	subdirs := map[string]bool{"noarch": true}
	for _, p := range pkgs {
		subdirs[p.Record.Subdir] = true
	}
	list := make([]string, 0, len(subdirs))
	for sd := range subdirs {
		list = append(list, sd)
	}
	sort.Strings(list)
	opts := condaindex.Options{Zst: true, Shards: c.Shards, Channeldata: true, HTML: c.HTML == nil || *c.HTML, Jobs: req.Jobs}
	if err := condaindex.WriteIndex(req.OutDir, pkgs, list, opts); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "mirror of %d packages in %s\n", len(pkgs), strings.Join(list, ", "))
	return &builders.Result{Metadata: map[string]string{
		publishers.MetaLayout:  "tree",
		publishers.MetaMutable: Mutable,
		"subdirs":              strings.Join(list, ","),
		"packages":             strconv.Itoa(len(pkgs)),
	}}, nil
}

func logOf(req *builders.Request) io.Writer {
	if req.Log == nil {
		return io.Discard
	}
	return req.Log
}

var subdirName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// placement is where a package file goes in the mirror.
func placement(r *repodata.Record) (subdir, fileName string, err error) {
	subdir, fileName = r.Subdir, r.FileName
	if u, perr := url.Parse(r.URL); perr == nil && r.URL != "" {
		dir, base := path.Split(u.Path)
		if fileName == "" {
			fileName = base
		}
		if subdir == "" {
			subdir = path.Base(path.Clean(dir))
		}
	}
	if !condaindex.IsPackageFile(fileName) || strings.ContainsAny(fileName, `/\`) {
		return "", "", fmt.Errorf("package %s (%s): %q is not a package file name", r.DistName(), r.URL, fileName)
	}
	if !subdirName.MatchString(subdir) {
		return "", "", fmt.Errorf("package %s (%s): %q is not a subdir name", r.DistName(), r.URL, subdir)
	}
	return subdir, fileName, nil
}

// mirrorEnvironments fetches the union of the environments' packages
// through the package cache and copies them into the output, keeping the
// lock's records (they carry the source channel's metadata, patches
// included) with the digests checked against the copies.
func mirrorEnvironments(ctx context.Context, req *builders.Request, addrs []string) ([]condaindex.Package, error) {
	type entry struct {
		rec     repodata.Record
		from    string
		sub, fn string
	}
	byFile := map[string]*entry{}
	for _, addr := range addrs {
		res, err := condaenv.Resolved(req, addr)
		if err != nil {
			return nil, err
		}
		if n := len(res.Environment.Pip); n > 0 {
			fmt.Fprintf(logOf(req), "%s: its %d pip wheels are not conda packages and stay out of the mirror\n", addr, n)
		}
		for _, r := range res.Environment.Packages {
			sd, fn, err := placement(&r)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", addr, err)
			}
			key := sd + "/" + fn
			if e := byFile[key]; e != nil {
				if !sameDigests(&e.rec, &r) {
					return nil, fmt.Errorf("%s and %s lock different files named %s: a mirror holds one", e.from, addr, key)
				}
				continue
			}
			byFile[key] = &entry{rec: r, from: addr, sub: sd, fn: fn}
		}
	}
	keys := make([]string, 0, len(byFile))
	for k := range byFile {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	union := &lock.Environment{}
	for _, k := range keys {
		union.Packages = append(union.Packages, byFile[k].rec)
	}
	paths, err := condaenv.Engine(req).Fetch(ctx, union)
	if err != nil {
		return nil, err
	}
	out := make([]condaindex.Package, len(keys))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs(req.Jobs))
	for i, k := range keys {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			e := byFile[k]
			dst := filepath.Join(req.OutDir, e.sub, e.fn)
			if err := fsutil.CopyFile(paths[i], dst, 0o644); err != nil {
				return fmt.Errorf("%s: copy %s: %w", e.from, e.fn, err)
			}
			p, err := condaindex.ReadPackage(dst, e.sub)
			if err != nil {
				return fmt.Errorf("%s: %w", e.from, err)
			}
			got := &p.Record
			want := &e.rec
			switch {
			case want.SHA256 != "" && !strings.EqualFold(want.SHA256, got.SHA256),
				want.SHA256 == "" && !strings.EqualFold(want.MD5, got.MD5):
				return fmt.Errorf("%s: %s: the package's sha256 is %s (md5 %s), the lock says %s (md5 %s)", e.from, e.fn, got.SHA256, got.MD5, want.SHA256, want.MD5)
			case want.Size > 0 && want.Size != got.Size:
				return fmt.Errorf("%s: %s: the package has %d bytes, the lock says %d", e.from, e.fn, got.Size, want.Size)
			case want.Name != got.Name || want.Version != got.Version || want.Build != got.Build:
				return fmt.Errorf("%s: %s holds %s, the lock says %s", e.from, e.fn, got.DistName(), want.DistName())
			}
			rec := *want
			rec.URL, rec.Channel = "", ""
			rec.FileName, rec.Subdir = e.fn, e.sub
			rec.SHA256, rec.MD5, rec.Size = got.SHA256, got.MD5, got.Size
			if rec.Depends == nil {
				rec.Depends = []string{}
			}
			out[i] = condaindex.Package{Record: rec, Meta: p.Meta}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

func sameDigests(a, b *repodata.Record) bool {
	if a.SHA256 != "" && b.SHA256 != "" {
		return strings.EqualFold(a.SHA256, b.SHA256)
	}
	return a.MD5 != "" && strings.EqualFold(a.MD5, b.MD5)
}

func jobs(n int) int {
	if n <= 0 {
		return runtime.GOMAXPROCS(0)
	}
	return n
}

// capture builds the packages of a conda installation's package cache.
// urls.txt tells each file's subdir (the download URL's second-to-last
// path element); a file it does not list goes where its channel record or
// info/index.json says. A package's record is the channel's (from
// repodata_record.json) when conda kept one that describes these exact
// bytes, else its info/index.json.
func capture(ctx context.Context, req *builders.Request, prefix string) ([]condaindex.Package, error) {
	l, err := listCache(prefix)
	if err != nil {
		return nil, err
	}
	subdirOf := map[string]string{}
	if l.urls != "" {
		data, err := os.ReadFile(l.urls)
		if err != nil {
			return nil, err
		}
		subdirOf = ParseURLs(data)
	}
	hashed := map[string]string{}
	for _, f := range req.InputFiles {
		hashed[filepath.Clean(f.Path)] = f.SHA256
	}
	log := logOf(req)
	var logMu sync.Mutex
	out := make([]condaindex.Package, len(l.archives))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs(req.Jobs))
	for i, src := range l.archives {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			fn := filepath.Base(src)
			var chanRec *repodata.Record
			if p := l.records[src]; p != "" {
				if want, ok := hashed[filepath.Clean(p)]; ok {
					if sum, _, err := artifact.HashFile(p); err != nil || sum != want {
						return fmt.Errorf("%s changed since the build was planned", p)
					}
				}
				if b, err := os.ReadFile(p); err == nil {
					var r repodata.Record
					if json.Unmarshal(b, &r) == nil {
						chanRec = &r
					}
				}
			}
			sd := subdirOf[fn]
			if sd == "" && chanRec != nil {
				if s, _, err := placement(chanRec); err == nil {
					sd = s
				}
			}
			if sd == "" {
				info, err := pkg.ReadInfo(src)
				if err != nil {
					return fmt.Errorf("%s: %w", src, err)
				}
				sd = info.Index.Subdir
				if sd == "" && info.Index.Noarch != "" {
					sd = "noarch"
				}
				if !subdirName.MatchString(sd) {
					return fmt.Errorf("%s: not in urls.txt and info/index.json names no usable subdir (%q)", src, sd)
				}
			}
			dst := filepath.Join(req.OutDir, sd, fn)
			if err := fsutil.CopyFile(src, dst, 0o644); err != nil {
				return fmt.Errorf("copy %s: %w", src, err)
			}
			p, err := condaindex.ReadPackage(dst, sd)
			if err != nil {
				return fmt.Errorf("%s: %w", src, err)
			}
			if want, ok := hashed[filepath.Clean(src)]; ok && want != p.Record.SHA256 {
				return fmt.Errorf("%s changed since the build was planned (sha256 %s, was %s)", src, p.Record.SHA256, want)
			}
			if chanRec != nil {
				if describes(chanRec, &p.Record) {
					rec := *chanRec
					rec.URL, rec.Channel = "", ""
					rec.FileName, rec.Subdir = fn, sd
					rec.SHA256, rec.MD5, rec.Size = p.Record.SHA256, p.Record.MD5, p.Record.Size
					if rec.Depends == nil {
						rec.Depends = []string{}
					}
					p.Record = rec
				} else {
					logMu.Lock()
					fmt.Fprintf(log, "%s: the channel record beside it describes other bytes; using info/index.json\n", src)
					logMu.Unlock()
				}
			}
			out[i] = *p
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// describes tells whether a channel record is that of the package read
// from a file: same name, version and build, and a matching checksum.
func describes(ch, file *repodata.Record) bool {
	if ch.Name != file.Name || ch.Version != file.Version || ch.Build != file.Build {
		return false
	}
	if ch.Size > 0 && ch.Size != file.Size {
		return false
	}
	switch {
	case ch.SHA256 != "":
		return strings.EqualFold(ch.SHA256, file.SHA256)
	case ch.MD5 != "":
		return strings.EqualFold(ch.MD5, file.MD5)
	}
	return false
}

// ParseURLs reads a package cache's urls.txt (one download URL a line,
// appended by conda as it downloads) into the subdir of each file name:
// the URL's second-to-last path element. Lines that are not URLs of
// package files are skipped; a later line wins over an earlier one.
func ParseURLs(data []byte) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, err := url.Parse(line)
		if err != nil {
			continue
		}
		p := strings.TrimSuffix(u.Path, "/")
		dir, fn := path.Split(p)
		sd := path.Base(strings.TrimSuffix(dir, "/"))
		if !condaindex.IsPackageFile(fn) || !subdirName.MatchString(sd) {
			continue
		}
		out[fn] = sd
	}
	return out
}
