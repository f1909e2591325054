package condaindex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/sparkenv/sparkenv/internal/conda/repodata"
	"github.com/sparkenv/sparkenv/internal/conda/version"
)

// Options say what Index reads with and writes.
type Options struct {
	// Jobs is how many packages are read at once; 0 means all cores.
	Jobs int
	// Zst also writes repodata.json.zst, which modern clients fetch first.
	Zst bool
	// Shards also writes the CEP 16 sharded index.
	Shards bool
	// Channeldata writes channeldata.json at the root.
	Channeldata bool
	// HTML writes an index.html per folder.
	HTML bool
	// Log receives one line per subdir; nil discards.
	Log io.Writer
	// NoCache neither reads nor writes the cache file: every package is
	// read.
	NoCache bool
}

// Stats say what a run did.
type Stats struct {
	Packages int      // packages in the index
	Read     int      // packages whose file was read
	Reused   int      // packages taken from the cache
	Subdirs  []string // subdirs indexed, sorted
}

// subdirName is what a folder must be called to count as a subdir.
var subdirName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// IsPackageFile reports whether a file name is a conda package archive.
func IsPackageFile(name string) bool {
	return !strings.HasPrefix(name, ".") && repodata.Stem(name) != ""
}

// Index indexes the channel folder dir in place. A subdir is a folder of
// dir holding package files or a repodata.json; noarch/ always is. Packages
// unchanged since the last run (same size, mtime and inode) are not read
// again; packages no longer present leave the index. Output is a pure
// function of the package files.
func Index(ctx context.Context, dir string, opts Options) (*Stats, error) {
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	files, subdirs, err := scan(dir)
	if err != nil {
		return nil, err
	}
	cachePath := filepath.Join(dir, CacheFile)
	cache := map[string]*cacheEntry{}
	if !opts.NoCache {
		if cache, err = loadCache(cachePath); err != nil {
			return nil, err
		}
	}
	pkgs := make([]*Package, len(files))
	var todo []int
	st := &Stats{Packages: len(files), Subdirs: subdirs}
	for i, f := range files {
		if e := cache[f.rel]; e != nil && e.fileKey == f.key && e.Record.Subdir == f.subdir {
			pkgs[i] = &Package{Record: repodata.Record(e.Record), Meta: e.Meta}
			st.Reused++
			continue
		}
		todo = append(todo, i)
	}
	st.Read = len(todo)
	errs := make([]error, len(files))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs(opts.Jobs))
	for _, i := range todo {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			f := files[i]
			p, err := ReadPackage(f.path, f.subdir)
			if err != nil {
				errs[i] = err // every broken file is reported, not only the first
				return nil
			}
			// A file rewritten while it was read gets a new key and is read
			// again next time rather than trusted with stale digests.
			if fi, err := os.Stat(f.path); err != nil || keyOf(fi) != f.key {
				errs[i] = fmt.Errorf("%s: changed while it was read", f.path)
				return nil
			}
			pkgs[i] = p
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("index %s: %w", dir, err)
	}
	list := make([]Package, len(pkgs))
	for i, p := range pkgs {
		list[i] = *p
	}
	if err := WriteIndex(dir, list, subdirs, opts); err != nil {
		return nil, err
	}
	count := map[string]int{}
	for _, f := range files {
		count[f.subdir]++
	}
	for _, sd := range subdirs {
		fmt.Fprintf(log, "%s: %d packages\n", sd, count[sd])
	}
	fmt.Fprintf(log, "indexed %d packages (%d read, %d unchanged)\n", st.Packages, st.Read, st.Reused)
	if !opts.NoCache {
		next := make(map[string]*cacheEntry, len(files))
		for i, f := range files {
			next[f.rel] = &cacheEntry{fileKey: f.key, Record: plainRecord(pkgs[i].Record), Meta: pkgs[i].Meta}
		}
		if err := saveCache(cachePath, next); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func jobs(n int) int {
	if n <= 0 {
		return runtime.GOMAXPROCS(0)
	}
	return n
}

type pkgFile struct {
	path, rel, subdir string
	key               fileKey
}

// scan lists the package files of a channel folder, sorted by path, and
// its subdirs.
func scan(dir string) ([]pkgFile, []string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("index: %w", err)
	}
	subdirs := map[string]bool{"noarch": true}
	var files []pkgFile
	for _, e := range ents {
		if !subdirName.MatchString(e.Name()) {
			continue
		}
		sdPath := filepath.Join(dir, e.Name())
		if fi, err := os.Stat(sdPath); err != nil || !fi.IsDir() {
			continue
		}
		inner, err := os.ReadDir(sdPath)
		if err != nil {
			return nil, nil, fmt.Errorf("index: %w", err)
		}
		for _, f := range inner {
			if f.Name() == "repodata.json" {
				subdirs[e.Name()] = true
			}
			if !IsPackageFile(f.Name()) {
				continue
			}
			p := filepath.Join(sdPath, f.Name())
			fi, err := os.Stat(p) // a link to a package counts as the package
			if err != nil {
				return nil, nil, fmt.Errorf("index: %w", err)
			}
			if !fi.Mode().IsRegular() {
				continue
			}
			subdirs[e.Name()] = true
			files = append(files, pkgFile{path: p, rel: e.Name() + "/" + f.Name(), subdir: e.Name(), key: keyOf(fi)})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	list := make([]string, 0, len(subdirs))
	for sd := range subdirs {
		list = append(list, sd)
	}
	sort.Strings(list)
	return files, list, nil
}

// WriteIndex writes the index files of a channel whose package files are
// already in place under dir: each subdir's repodata (as opts asks), an
// index for every subdir in subdirs (noarch always) even without packages,
// channeldata.json and the index.html pages. Every package must name its
// file and subdir.
func WriteIndex(dir string, pkgs []Package, subdirs []string, opts Options) error {
	bySubdir := map[string][]repodata.Record{"noarch": nil}
	for _, s := range subdirs {
		bySubdir[s] = bySubdir[s]
	}
	for i := range pkgs {
		r := pkgs[i].Record
		if r.Subdir == "" || r.FileName == "" {
			return fmt.Errorf("index: package %s has no subdir or file name", r.DistName())
		}
		bySubdir[r.Subdir] = append(bySubdir[r.Subdir], r)
	}
	all := make([]string, 0, len(bySubdir))
	for sd := range bySubdir {
		if !subdirName.MatchString(sd) {
			return fmt.Errorf("index: %q is not a subdir name", sd)
		}
		all = append(all, sd)
	}
	sort.Strings(all)
	wo := repodata.WriteOptions{Zst: opts.Zst, Shards: opts.Shards}
	for _, sd := range all {
		if err := repodata.Write(dir, sd, bySubdir[sd], wo); err != nil {
			return fmt.Errorf("index %s: %w", sd, err)
		}
		if err := removeStale(filepath.Join(dir, sd), opts.Log); err != nil {
			return err
		}
	}
	if opts.Channeldata {
		var recs []repodata.Record
		for _, sd := range all {
			recs = append(recs, bySubdir[sd]...)
		}
		err := repodata.WriteChanneldata(dir, recs, repodata.ChanneldataOptions{
			Subdirs: all, Meta: latestMeta(pkgs), CompareVersions: compareVersions,
		})
		if err != nil {
			return fmt.Errorf("index: %w", err)
		}
	}
	if opts.HTML {
		if err := writeHTML(dir, all, pkgs, opts); err != nil {
			return err
		}
	}
	return nil
}

func compareVersions(a, b string) int {
	va, errA := version.Parse(a)
	vb, errB := version.Parse(b)
	if errA != nil || errB != nil {
		return strings.Compare(a, b)
	}
	return va.Compare(vb)
}

// latestMeta picks, for each name, the flags of its latest package: the
// highest version, then the newest timestamp, then the greatest file name
// (the order channeldata's version and timestamp follow).
func latestMeta(pkgs []Package) map[string]repodata.ChannelPackage {
	best := map[string]*Package{}
	for i := range pkgs {
		p := &pkgs[i]
		b := best[p.Record.Name]
		if b == nil {
			best[p.Record.Name] = p
			continue
		}
		c := compareVersions(p.Record.Version, b.Record.Version)
		if c > 0 || c == 0 && (p.Record.Timestamp > b.Record.Timestamp ||
			p.Record.Timestamp == b.Record.Timestamp && p.Record.FileName > b.Record.FileName) {
			best[p.Record.Name] = p
		}
	}
	out := make(map[string]repodata.ChannelPackage, len(best))
	for name, p := range best {
		out[name] = p.Meta
	}
	return out
}

// staleForms are index files other indexers write and this one does not.
// Clients read some of them before repodata.json (conda's classic solver
// reads current_repodata.json first; rattler tries .bz2 before the plain
// file), so one left from an earlier index would hide the new one.
var staleForms = []string{"repodata.json.bz2", "current_repodata.json", "current_repodata.json.bz2", "current_repodata.json.zst"}

func removeStale(subdir string, log io.Writer) error {
	for _, name := range staleForms {
		p := filepath.Join(subdir, name)
		err := os.Remove(p)
		if err == nil && log != nil {
			fmt.Fprintf(log, "removed %s: this index does not write it and clients would read it first\n", p)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("index: %w", err)
		}
	}
	return nil
}
