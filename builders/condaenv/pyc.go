package condaenv

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/internal/conda/install"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/execx"
	"github.com/sparkenv/sparkenv/internal/fsutil"
)

// pycVersion names the way .pyc files are made; a change to it (the
// script, the selection of files, the flags) must change the cache keys.
const pycVersion = "sparkenv-pyc-4"

// notCompiled matches the prefix-relative paths of .py files that are left
// without a .pyc: test suites and the deliberately broken files some
// packages ship to test their own error handling.
var notCompiled = regexp.MustCompile(`(^|/)(test|tests|idle_test)/|bad_coding|badsyntax`)

// pycManifest is what a cached set of .pyc files holds: for each source
// (prefix-relative) the .pyc path, or the reason it did not compile, and
// the modification time of each directory holding .pyc files, which a
// file added or removed there changes. It is stored as the entry's
// "manifest": a header line, then one line per source ("c", source, .pyc
// or "f", source, reason) and per directory ("d", directory, time in
// nanoseconds), tab-separated, a field quoted when it holds a tab, a line
// break or starts with a quote, and an "end" line with the number of
// lines, so a cut file is seen.
type pycManifest struct {
	Compiled map[string]string
	Failed   map[string]string
	Dirs     map[string]string
}

func newPycManifest() *pycManifest {
	return &pycManifest{Compiled: map[string]string{}, Failed: map[string]string{}, Dirs: map[string]string{}}
}

func (m *pycManifest) lines() int { return len(m.Compiled) + len(m.Failed) + len(m.Dirs) }

const pycManifestHeader = "sparkenv pyc manifest"

func (m *pycManifest) encode() []byte {
	field := func(s string) string {
		if strings.ContainsAny(s, "\t\n\r") || strings.HasPrefix(s, `"`) {
			return strconv.Quote(s)
		}
		return s
	}
	var b strings.Builder
	b.WriteString(pycManifestHeader + "\n")
	for _, kind := range []struct {
		tag string
		m   map[string]string
	}{{"c", m.Compiled}, {"f", m.Failed}, {"d", m.Dirs}} {
		keys := make([]string, 0, len(kind.m))
		for k := range kind.m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s\t%s\t%s\n", kind.tag, field(k), field(kind.m[k]))
		}
	}
	fmt.Fprintf(&b, "end %d\n", m.lines())
	return []byte(b.String())
}

func decodePycManifest(s string) (*pycManifest, error) {
	rest, ok := strings.CutPrefix(s, pycManifestHeader+"\n")
	if !ok {
		return nil, errors.New("no manifest header")
	}
	field := func(f string) (string, error) {
		if strings.HasPrefix(f, `"`) {
			return strconv.Unquote(f)
		}
		return f, nil
	}
	m := newPycManifest()
	m.Compiled = make(map[string]string, strings.Count(rest, "\nc\t")+1)
	for {
		line, next, ok := strings.Cut(rest, "\n")
		if !ok {
			return nil, errors.New("manifest cut short")
		}
		if n, isEnd := strings.CutPrefix(line, "end "); isEnd {
			if next != "" || n != strconv.Itoa(m.lines()) {
				return nil, errors.New("manifest count does not match")
			}
			return m, nil
		}
		tag, line, ok1 := strings.Cut(line, "\t")
		a, b, ok2 := strings.Cut(line, "\t")
		if !ok1 || !ok2 || strings.Contains(b, "\t") {
			return nil, fmt.Errorf("bad manifest line %q", line)
		}
		src, err1 := field(a)
		val, err2 := field(b)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad manifest line %q", line)
		}
		switch tag {
		case "c":
			// The .pyc path names a file below the entry.
			if !filepath.IsLocal(val) || path.Clean(val) != val {
				return nil, fmt.Errorf("bad .pyc path %q", val)
			}
			m.Compiled[src] = val
		case "f":
			m.Failed[src] = val
		case "d":
			m.Dirs[src] = val
		default:
			return nil, fmt.Errorf("bad manifest line %q", line)
		}
		rest = next
	}
}

// pycGroup is the .py files of one package (or of what no package owns),
// compiled and cached together.
type pycGroup struct {
	key     string
	sources []pycSource
	dir     string // the cache entry
	tmp     string // where it is compiled before it is stored
	man     *pycManifest
}

type pycSource struct {
	path   string // prefix-relative path of the .py file (or of a link to one)
	sha256 string
}

// CachedPyc returns the unchecked-hash .pyc files of the .py files of tree
// as entries to add to it (the files and their __pycache__ directories).
// They are compiled with the environment's own interpreter once per
// interpreter, target prefix and package contents, and kept in the package
// cache, so a rebuild of an environment that shares packages with an
// earlier one compiles only what is new. stage returns the directory of
// the environment laid out for real, where the interpreter can run; it is
// called only when something has to be compiled. CachedPyc returns false,
// doing nothing, when the environment has no python or the python cannot
// run here.
func CachedPyc(ctx context.Context, req *builders.Request, env *lock.Environment, tree *install.Tree,
	targetPrefix string, stage func() (string, error)) ([]install.Entry, bool, error) {
	xy := PythonVersion(env)
	if xy == "" || !HostRuns(env.Platform) {
		return nil, false, nil
	}
	groups, err := pycGroups(env, tree, targetPrefix, xy, filepath.Join(req.PackageCacheDir, "pyc"))
	if err != nil {
		return nil, false, err
	}
	var eg errgroup.Group
	eg.SetLimit(runtime.GOMAXPROCS(0))
	for _, g := range groups {
		eg.Go(func() (err error) {
			g.man, err = readPycManifest(g.dir)
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, false, err
	}
	var missing []*pycGroup
	for _, g := range groups {
		if g.man == nil {
			missing = append(missing, g)
		}
	}
	if len(missing) > 0 {
		dir, err := stage()
		if err != nil {
			return nil, false, err
		}
		py := filepath.Join(dir, "bin", "python"+xy)
		if _, err := os.Stat(py); err != nil {
			return nil, false, nil
		}
		n := 0
		for _, g := range missing {
			n += len(g.sources)
		}
		fmt.Fprintf(req.Log, "compiling %d .py files of %d packages (%d packages' .pyc files are cached)\n", n, len(missing), len(groups)-len(missing))
		if err := compileGroups(ctx, req, py, dir, targetPrefix, missing); err != nil {
			return nil, false, err
		}
	}
	return pycEntries(req, tree, groups), true, nil
}

// pycGroups selects the .py files to compile (those compileall would
// compile below lib/pythonX.Y, following links to files) and groups them
// by package, each group keyed by everything its .pyc bytes depend on.
func pycGroups(env *lock.Environment, tree *install.Tree, targetPrefix, xy, cacheDir string) ([]*pycGroup, error) {
	var python string
	for _, r := range env.Packages {
		if r.Name == "python" {
			python = strings.Join([]string{r.DistName(), r.Subdir, r.SHA256, r.MD5}, " ")
		}
	}
	var byPath map[string]*install.Entry // made for the first link to a .py file
	lib := "lib/python" + xy + "/"
	byPkg := map[int]*pycGroup{}
	var order []int
	for i := range tree.Entries {
		e := &tree.Entries[i]
		if !strings.HasPrefix(e.Path, lib) || !strings.HasSuffix(e.Path, ".py") || e.Type == install.EntryDir ||
			strings.Contains("/"+e.Path, "/__pycache__/") ||
			(strings.Contains(e.Path, "test") || strings.Contains(e.Path, "bad")) && notCompiled.MatchString(e.Path) {
			continue
		}
		file := e
		if e.Type == install.EntrySymlink {
			if byPath == nil {
				byPath = make(map[string]*install.Entry, len(tree.Entries))
				for i := range tree.Entries {
					byPath[tree.Entries[i].Path] = &tree.Entries[i]
				}
			}
			if file = resolveFile(byPath, e); file == nil {
				continue // a dangling link or one to a directory
			}
		}
		sum := file.SHA256
		if sum == "" {
			s, _, err := artifact.HashFile(file.Source)
			if err != nil {
				return nil, err
			}
			sum = s
		}
		g := byPkg[e.Package]
		if g == nil {
			g = &pycGroup{}
			byPkg[e.Package] = g
			order = append(order, e.Package)
		}
		g.sources = append(g.sources, pycSource{path: e.Path, sha256: sum})
	}
	sort.Ints(order)
	groups := make([]*pycGroup, 0, len(order))
	for _, pi := range order {
		g := byPkg[pi]
		h := sha256.New()
		fmt.Fprintf(h, "%s\n%s\n%s\n", pycVersion, python, targetPrefix)
		var line []byte
		for _, s := range g.sources {
			line = append(append(append(append(line[:0], s.path...), '\t'), s.sha256...), '\n')
			h.Write(line)
		}
		g.key = hex.EncodeToString(h.Sum(nil))
		g.dir = filepath.Join(cacheDir, g.key[:2], g.key)
		groups = append(groups, g)
	}
	return groups, nil
}

// resolveFile follows a link entry through the tree to a file entry, or
// returns nil.
func resolveFile(byPath map[string]*install.Entry, e *install.Entry) *install.Entry {
	for hops := 0; e != nil && e.Type == install.EntrySymlink; hops++ {
		if hops > 40 || path.IsAbs(e.Target) {
			return nil
		}
		e = byPath[path.Join(path.Dir(e.Path), e.Target)]
	}
	if e == nil || e.Type != install.EntryFile {
		return nil
	}
	return e
}

func readPycManifest(dir string) (*pycManifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pyc cache: %w", err)
	}
	m, err := decodePycManifest(string(b))
	if err != nil {
		// A damaged entry is compiled again rather than trusted.
		return nil, nil
	}
	// The directories of the .pyc files must be as they were stored: a
	// file added or removed changes a directory's time. The stats are
	// relative to the entry, which saves walking its long path each time.
	d, err := os.Open(dir)
	if err != nil {
		return nil, nil
	}
	defer d.Close()
	var st unix.Stat_t
	// One .pyc, the same each time, is looked at for its mode, which the
	// image takes: a cache copied or restored with other modes shows in
	// any of them.
	first := ""
	for _, pyc := range m.Compiled {
		if first == "" || pyc < first {
			first = pyc
		}
	}
	if first != "" && (unix.Fstatat(int(d.Fd()), first, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode != unix.S_IFREG|0o644) {
		return nil, nil
	}
	for sub, mtime := range m.Dirs {
		if unix.Fstatat(int(d.Fd()), sub, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR ||
			strconv.FormatInt(st.Mtim.Nano(), 10) != mtime {
			return nil, nil
		}
	}
	return m, nil
}

// compileScript compiles the files named on its standard input, one JSON
// array [source, display name, output root, prefix-relative path] per line,
// and answers one JSON array [path, .pyc path or "", error] per file.
const compileScript = `import importlib.util, json, os, py_compile, sys
mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
for line in sys.stdin:
    src, dfile, root, rel = json.loads(line)
    pyc = importlib.util.cache_from_source(rel)
    try:
        py_compile.compile(src, cfile=os.path.join(root, pyc), dfile=dfile, doraise=True, invalidation_mode=mode)
        print(json.dumps([rel, pyc, ""]), flush=True)
    except Exception as e:
        print(json.dumps([rel, "", str(e).splitlines()[0] if str(e) else type(e).__name__]), flush=True)
`

// compileGroups compiles the groups' files with one interpreter per core
// and stores each group in the cache, atomically.
func compileGroups(ctx context.Context, req *builders.Request, py, stage, targetPrefix string, groups []*pycGroup) error {
	type job struct {
		g   *pycGroup
		src pycSource
	}
	var jobs []job
	for _, g := range groups {
		if err := os.MkdirAll(filepath.Dir(g.dir), 0o755); err != nil {
			return fmt.Errorf("pyc cache: %w", err)
		}
		fsutil.RemoveStale(filepath.Dir(g.dir), ".tmp-")
		tmp, err := os.MkdirTemp(filepath.Dir(g.dir), ".tmp-"+g.key[:8]+"-")
		if err != nil {
			return fmt.Errorf("pyc cache: %w", err)
		}
		defer os.RemoveAll(tmp)
		g.tmp = tmp
		g.man = newPycManifest()
		for _, s := range g.sources {
			jobs = append(jobs, job{g: g, src: s})
		}
	}
	workers := req.Jobs
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	workers = max(1, min(workers, (len(jobs)+63)/64))
	// -s -S keep user and site packages out without -I/-E, which would
	// also ignore PYTHONHASHSEED: a fixed seed keeps the .pyc bytes the
	// same from one build to the next.
	childEnv := []string{"PYTHONHASHSEED=0"}
	for _, kv := range req.Runner.Env {
		if !strings.HasPrefix(kv, "PYTHON") {
			childEnv = append(childEnv, kv)
		}
	}
	results := make([][3]string, len(jobs))
	g, gctx := errgroup.WithContext(ctx)
	for w := range workers {
		g.Go(func() error {
			var in strings.Builder
			var mine []int
			for i := w; i < len(jobs); i += workers {
				j := jobs[i]
				b, _ := json.Marshal([]string{filepath.Join(stage, filepath.FromSlash(j.src.path)),
					targetPrefix + "/" + j.src.path, j.g.tmp, j.src.path})
				in.Write(b)
				in.WriteByte('\n')
				mine = append(mine, i)
			}
			r := &execx.Runner{Env: childEnv, Log: req.Log}
			out, err := r.Output(gctx, execx.Cmd{Argv: []string{py, "-s", "-S", "-c", compileScript}, Stdin: strings.NewReader(in.String())})
			if err != nil {
				return fmt.Errorf("compile .pyc with %s: %w", py, err)
			}
			sc := bufio.NewScanner(strings.NewReader(string(out)))
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			k := 0
			for sc.Scan() {
				var res [3]string
				if err := json.Unmarshal(sc.Bytes(), &res); err != nil || k >= len(mine) {
					return fmt.Errorf("compile .pyc with %s: unexpected output %q", py, sc.Text())
				}
				results[mine[k]] = res
				k++
			}
			if k != len(mine) {
				return fmt.Errorf("compile .pyc with %s: %d of %d files answered", py, k, len(mine))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, j := range jobs {
		res := results[i]
		if res[1] == "" {
			j.g.man.Failed[res[0]] = res[2]
			continue
		}
		// py_compile gives the .pyc the source's mode less the umask; the
		// image takes the cached file's mode as it is.
		if err := os.Chmod(filepath.Join(j.g.tmp, filepath.FromSlash(res[1])), 0o644); err != nil {
			return fmt.Errorf("pyc cache: %w", err)
		}
		j.g.man.Compiled[res[0]] = res[1]
	}
	for _, g := range groups {
		for _, pyc := range g.man.Compiled {
			dir := path.Dir(pyc)
			if _, ok := g.man.Dirs[dir]; ok {
				continue
			}
			fi, err := os.Lstat(filepath.Join(g.tmp, filepath.FromSlash(dir)))
			if err != nil {
				return fmt.Errorf("pyc cache: %w", err)
			}
			g.man.Dirs[dir] = strconv.FormatInt(fi.ModTime().UnixNano(), 10)
		}
		if err := os.WriteFile(filepath.Join(g.tmp, "manifest"), g.man.encode(), 0o644); err != nil {
			return fmt.Errorf("pyc cache: %w", err)
		}
	}
	// One sync of the file system makes every entry durable before any is
	// renamed into place.
	if len(groups) > 0 {
		d, err := os.Open(filepath.Dir(groups[0].dir))
		if err != nil {
			return fmt.Errorf("pyc cache: %w", err)
		}
		err = unix.Syncfs(int(d.Fd()))
		d.Close()
		if err != nil {
			return fmt.Errorf("pyc cache: sync: %w", err)
		}
	}
	for _, g := range groups {
		if err := os.Rename(g.tmp, g.dir); err != nil {
			// Another build stored the same group first (its files are
			// the same), or the entry there is damaged and is replaced.
			if m, _ := readPycManifest(g.dir); m != nil {
				continue
			}
			if err := os.RemoveAll(g.dir); err != nil {
				return fmt.Errorf("pyc cache: %w", err)
			}
			if err := os.Rename(g.tmp, g.dir); err != nil {
				return fmt.Errorf("pyc cache: %w", err)
			}
		}
	}
	return nil
}

// pycEntries lists the cached .pyc files as tree entries, with the
// __pycache__ directories the tree lacks. A .pyc a package ships is
// replaced by the compiled one.
func pycEntries(req *builders.Request, tree *install.Tree, groups []*pycGroup) []install.Entry {
	// What the tree has at a path (its entries are sorted), or what this
	// function added there.
	added := map[string]install.EntryType{}
	typeAt := func(p string) (install.EntryType, bool) {
		if t, ok := added[p]; ok {
			return t, true
		}
		i, ok := slices.BinarySearchFunc(tree.Entries, p, func(e install.Entry, p string) int { return strings.Compare(e.Path, p) })
		if !ok {
			return 0, false
		}
		return tree.Entries[i].Type, true
	}
	var out []install.Entry
	for _, g := range groups {
		srcs := make([]string, 0, len(g.man.Failed))
		for src := range g.man.Failed {
			srcs = append(srcs, src)
		}
		sort.Strings(srcs)
		for _, src := range srcs {
			fmt.Fprintf(req.Log, "%s does not compile, left without a .pyc: %s\n", src, g.man.Failed[src])
		}
		for _, s := range g.sources {
			pyc, ok := g.man.Compiled[s.path]
			if !ok {
				continue
			}
			dir := path.Dir(pyc)
			t, ok := typeAt(dir)
			if ok && t != install.EntryDir {
				continue // a file or link where __pycache__ would be
			}
			if !ok {
				added[dir] = install.EntryDir
				out = append(out, install.Entry{Path: dir, Type: install.EntryDir, Mode: 0o755, Package: -1})
			}
			// The manifest's .pyc paths are clean and local (decodePycManifest).
			out = append(out, install.Entry{Path: pyc, Type: install.EntryFile, Mode: 0o644,
				Source: g.dir + string(filepath.Separator) + filepath.FromSlash(pyc), Package: -1})
		}
	}
	return out
}

// AddCachedPyc gives the environment res installed at stage for
// targetPrefix (by Stage) its .pyc files from the .pyc cache, what
// CompilePyc does with compileall, except that only the packages not
// compiled by an earlier build are compiled, with the interpreter at
// stage. The files are hardlinked from the cache (copied where the file
// system refuses), so whoever packs stage must only read them. It returns
// false, doing nothing, when the environment has no python or its python
// cannot run here.
func AddCachedPyc(ctx context.Context, req *builders.Request, res *lock.Resolved, stage, targetPrefix string) (bool, error) {
	xy := PythonVersion(res.Environment)
	if xy == "" || !HostRuns(res.Environment.Platform) {
		return false, nil
	}
	work, err := os.MkdirTemp(req.TempDir, "pyc-layout-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(work)
	tree, err := Layout(ctx, req, res, filepath.Join(work, "layout"), targetPrefix)
	if err != nil {
		return false, err
	}
	pycs, done, err := CachedPyc(ctx, req, res.Environment, tree, targetPrefix, func() (string, error) { return stage, nil })
	if err != nil || !done {
		return done, err
	}
	for _, e := range pycs {
		dst := filepath.Join(stage, filepath.FromSlash(e.Path))
		switch e.Type {
		case install.EntryDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return false, fmt.Errorf("pyc cache: %w", err)
			}
			// Mkdir is subject to the umask; the tree's modes are not.
			if err := os.Chmod(dst, 0o755); err != nil {
				return false, fmt.Errorf("pyc cache: %w", err)
			}
		case install.EntryFile:
			if err := fsutil.LinkOrCopy(e.Source, dst, 0o644); err != nil {
				return false, fmt.Errorf("pyc cache: %w", err)
			}
		}
	}
	return true, nil
}
