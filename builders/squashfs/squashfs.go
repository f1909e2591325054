// Package squashfs builds the "squashfs" target: an environment installed
// for the path where the image will be mounted on every node (/opt/conda by
// default), with hash-based .pyc files, packed by mksquashfs with flags that
// make the image bit-identical from one build to the next.
//
// Nothing is staged: mksquashfs packs an empty root plus a pseudo file
// that gives every directory and symlink and, for every file, a hard-link
// definition naming the host file with its bytes: the file in the
// extracted package when it is installed unchanged, else the one written
// for this build (patched files, entry points, conda-meta) or the cached
// .pyc file. The image holds exactly the tree an install would write.
package squashfs

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/condaenv"
	"github.com/sparkenv/sparkenv/internal/conda/install"
	"github.com/sparkenv/sparkenv/internal/execx"
)

// Kind is the target kind.
const Kind = "squashfs"

// Config is the body of a squashfs target block.
type Config struct {
	Environment string `hcl:"environment"`
	// MountPoint is where the image is mounted on the nodes; files are
	// patched for it. Default: the environment's prefix.
	MountPoint string `hcl:"mount_point,optional"`
	// Compression is zstd (default), gzip, xz or lz4.
	Compression string `hcl:"compression,optional"`
	// Level of the compressor; default 3 for zstd, the tool's own otherwise.
	Level int `hcl:"level,optional"`
	// CompilePyc compiles hash-based .pyc files (default true).
	CompilePyc *bool `hcl:"compile_pyc,optional"`
	// Output file name; default "<name>.sqfs".
	Output string `hcl:"output,optional"`
}

// Builder builds squashfs images.
type Builder struct {
	// Mksquashfs is the program to run (default: mksquashfs on PATH).
	Mksquashfs string
}

var (
	_ builders.Builder       = (*Builder)(nil)
	_ builders.Validator     = (*Builder)(nil)
	_ builders.ToolVersioner = (*Builder)(nil)
)

// New returns the squashfs builder.
func New() *Builder { return &Builder{} }

func (*Builder) Kind() string    { return Kind }
func (*Builder) Version() string { return "2" }
func (*Builder) NewConfig() any  { return &Config{} }

var compressors = map[string]bool{"zstd": true, "gzip": true, "xz": true, "lz4": true}

// Validate checks the configuration.
func (*Builder) Validate(cfg any, baseDir string) error {
	c := cfg.(*Config)
	if c.MountPoint != "" && !filepath.IsAbs(c.MountPoint) {
		return fmt.Errorf("mount_point %q must be an absolute path", c.MountPoint)
	}
	if c.Compression != "" && !compressors[c.Compression] {
		return fmt.Errorf("compression %q is not one of zstd, gzip, xz, lz4", c.Compression)
	}
	if c.Output != "" && (strings.Contains(c.Output, "/") || c.Output == "." || c.Output == "..") {
		return fmt.Errorf("output %q must be a plain file name", c.Output)
	}
	return nil
}

func (b *Builder) tool() string {
	if b.Mksquashfs != "" {
		return b.Mksquashfs
	}
	return "mksquashfs"
}

// ToolVersions reports the mksquashfs version: another version may pack
// the same tree into other bytes.
func (b *Builder) ToolVersions(ctx context.Context, cfg any) (map[string]string, error) {
	out, err := (&execx.Runner{Env: os.Environ()}).Output(ctx, execx.Cmd{Argv: []string{b.tool(), "-version"}})
	if err != nil {
		return nil, fmt.Errorf("mksquashfs is needed for squashfs targets (Debian: apt-get install squashfs-tools): %w", err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return map[string]string{"mksquashfs": strings.TrimSpace(first)}, nil
}

// Build lays the environment out for the mount point and packs it. The
// image is packed straight from the package cache: mksquashfs reads a
// pseudo file that names, for every path, the file in the extracted
// package (or the few files written for this build: patched ones, entry
// points, conda-meta, and the cached .pyc files), so nothing of the
// environment is copied or linked into a staging tree first.
func (b *Builder) Build(ctx context.Context, req *builders.Request) (*builders.Result, error) {
	c := req.Config.(*Config)
	res, err := condaenv.Resolved(req, c.Environment)
	if err != nil {
		return nil, err
	}
	mount := c.MountPoint
	if mount == "" {
		mount = res.Prefix
	}
	if mount == "" {
		mount = "/opt/conda"
	}
	tree, err := condaenv.Layout(ctx, req, res, filepath.Join(req.TempDir, "layout"), mount)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(req.Log, "laid out %d packages, %d files for %s\n", len(res.Environment.Packages), tree.Report.Files, mount)
	if c.CompilePyc == nil || *c.CompilePyc {
		// The interpreter runs from an environment laid out for real, made
		// only when some .pyc file is not cached yet.
		stage := func() (string, error) {
			dir := filepath.Join(req.TempDir, "python")
			_, err := condaenv.Stage(ctx, req, res, dir, mount)
			return dir, err
		}
		pycs, done, err := condaenv.CachedPyc(ctx, req, res.Environment, tree, mount, stage)
		if err != nil {
			return nil, err
		}
		if !done {
			fmt.Fprintf(req.Log, "no python for %s runs here: .pyc files are not compiled\n", res.Environment.Platform)
		}
		tree.Add(pycs)
	}
	out := c.Output
	if out == "" {
		out = req.Name + ".sqfs"
	}
	if err := b.pack(ctx, req, tree, filepath.Join(req.OutDir, out), c); err != nil {
		return nil, err
	}
	return &builders.Result{Metadata: map[string]string{
		"main":        out,
		"mount_point": mount,
		"platform":    res.Environment.Platform,
		"python":      condaenv.PythonVersion(res.Environment),
	}}, nil
}

// Args are the mksquashfs flags that make an image bit-identical from one
// run to the next: fixed times, root ownership, no xattrs, and a
// compression whose output does not depend on the number of processors.
// With a pseudo file, src is an empty directory (the image's root) and the
// pseudo file names everything else.
func Args(src, dst, pseudo, compression string, level, processors int) []string {
	if compression == "" {
		compression = "zstd"
	}
	args := []string{src, dst, "-noappend", "-all-root", "-mkfs-time", "0", "-all-time", "0",
		"-no-xattrs", "-quiet", "-no-progress", "-comp", compression}
	switch {
	case compression == "zstd" && level == 0:
		args = append(args, "-Xcompression-level", "3")
	case level > 0 && (compression == "zstd" || compression == "gzip"):
		args = append(args, "-Xcompression-level", fmt.Sprint(level))
	}
	if processors > 0 {
		args = append(args, "-processors", fmt.Sprint(processors))
	}
	if pseudo != "" {
		args = append(args, "-pf", pseudo)
	}
	return args
}

// WritePseudo writes the mksquashfs pseudo file of a tree: a directory
// definition per directory, a hard-link definition ("l") naming the host
// file of each file, whose bytes and mode the image takes, and a symlink
// definition per link. Times and owners are left to -all-time and
// -all-root.
func WritePseudo(w io.Writer, entries []install.Entry) error {
	return writePseudo(w, entries, pseudoOrder(entries))
}

func writePseudo(w io.Writer, entries []install.Entry, order []int) error {
	// The lines are made in parallel, a slice of the order each, and
	// written in order.
	parts := min(runtime.GOMAXPROCS(0), max(1, len(order)/4096))
	bufs := make([][]byte, parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for k := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bufs[k], errs[k] = pseudoLines(entries, order[k*len(order)/parts:(k+1)*len(order)/parts])
		}()
	}
	wg.Wait()
	for k := range parts {
		if errs[k] != nil {
			return errs[k]
		}
	}
	for _, b := range bufs {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func pseudoLines(entries []install.Entry, order []int) ([]byte, error) {
	n := 0
	for _, i := range order {
		n += len(entries[i].Path) + len(entries[i].Source) + len(entries[i].Target) + 16
	}
	b := make([]byte, 0, n+n/16) // room for some escapes
	for _, i := range order {
		e := &entries[i]
		if e.Type != install.EntryDir && e.Type != install.EntryFile && e.Type != install.EntrySymlink {
			return nil, fmt.Errorf("%s: entry of unknown type %d", e.Path, e.Type)
		}
		var err error
		if b, err = appendPseudoName(b, e.Path); err != nil {
			return nil, err
		}
		switch e.Type {
		case install.EntryDir:
			b = append(b, " d "...)
			b = strconv.AppendUint(b, uint64(e.Mode.Perm()), 8)
			b = append(b, " 0 0"...)
		case install.EntryFile:
			b = append(b, " l "...)
			if b, err = appendPseudoName(b, e.Source); err != nil {
				return nil, err
			}
		case install.EntrySymlink:
			// The target is the rest of the line, taken as it is.
			if e.Target == "" || strings.ContainsAny(e.Target, "\n\r") || strings.TrimLeft(e.Target, " \t") != e.Target {
				return nil, fmt.Errorf("symlink %s -> %q cannot be written in a mksquashfs pseudo file", e.Path, e.Target)
			}
			b = append(b, " s 777 0 0 "...)
			b = append(b, e.Target...)
		}
		b = append(b, '\n')
	}
	return b, nil
}

// pseudoOrder is the order in which WritePseudo lists entries: each
// directory before what it holds, and of the entries of a directory, the
// one with the most paths below it first. mksquashfs finds each component
// of a pseudo path by a linear search through its parent's entries in the
// order they were defined, so a tree listed this way (site-packages first
// in lib/pythonX.Y, the biggest package first in site-packages) is read
// several percent faster than one in sorted order. The image is the same:
// mksquashfs sorts every directory.
func pseudoOrder(entries []install.Entry) []int {
	n := len(entries)
	dirs := make(map[string]int32, n/8)
	for i := range entries {
		if entries[i].Type == install.EntryDir {
			dirs[entries[i].Path] = int32(i)
		}
	}
	// The tree as arrays: each entry's parent (n: the root), and each
	// node's children in kids[start[p]:start[p+1]], in the given order.
	parent := make([]int32, n)
	start := make([]int32, n+2)
	for i := range entries {
		parent[i] = int32(n)
		if p := entries[i].Path; strings.LastIndexByte(p, '/') >= 0 {
			if d, ok := dirs[p[:strings.LastIndexByte(p, '/')]]; ok {
				parent[i] = d
			}
		}
		start[parent[i]+1]++
	}
	for p := 1; p < len(start); p++ {
		start[p] += start[p-1]
	}
	kids := make([]int32, n)
	next := slices.Clone(start[:n+1])
	for i, p := range parent {
		kids[next[p]] = int32(i)
		next[p]++
	}
	// Sizes from a pre-order walk taken backwards: children come after
	// their parent in it.
	walk := make([]int32, 0, n)
	stack := []int32{int32(n)}
	for len(stack) > 0 {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if d != int32(n) {
			walk = append(walk, d)
		}
		stack = append(stack, kids[start[d]:start[d+1]]...)
	}
	size := make([]int32, n+1)
	for k := len(walk) - 1; k >= 0; k-- {
		i := walk[k]
		size[i]++
		size[parent[i]] += size[i]
	}
	for d := 0; d <= n; d++ {
		if c := kids[start[d]:start[d+1]]; len(c) > 1 {
			slices.SortStableFunc(c, func(a, b int32) int { return int(size[b] - size[a]) })
		}
	}
	// The order: pre-order again, children biggest first.
	order := make([]int, 0, n)
	stack = append(stack[:0], int32(n))
	for len(stack) > 0 {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if d != int32(n) {
			order = append(order, int(d))
		}
		c := kids[start[d]:start[d+1]]
		for k := len(c) - 1; k >= 0; k-- {
			stack = append(stack, c[k])
		}
	}
	return order
}

// pseudoSpecial marks the bytes appendPseudoName escapes or refuses.
var pseudoSpecial = [256]bool{' ': true, '\t': true, '"': true, '\\': true, '\n': true, '\r': true}

// appendPseudoName appends p escaped for a pseudo file: a backslash
// before each space, tab, double quote and backslash. Line breaks cannot
// be written.
func appendPseudoName(b []byte, p string) ([]byte, error) {
	if p == "" {
		return b, fmt.Errorf("an empty path cannot be written in a mksquashfs pseudo file")
	}
	start := 0
	for i := 0; i < len(p); i++ {
		if !pseudoSpecial[p[i]] {
			continue
		}
		switch c := p[i]; c {
		case '\n', '\r':
			return b, fmt.Errorf("path %q cannot be written in a mksquashfs pseudo file", p)
		case ' ', '\t', '"', '\\':
			b = append(b, p[start:i]...)
			b = append(b, '\\', c)
			start = i + 1
		}
	}
	return append(b, p[start:]...), nil
}

func (b *Builder) pack(ctx context.Context, req *builders.Request, tree *install.Tree, dst string, c *Config) error {
	jobs := req.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	work, err := os.MkdirTemp(req.TempDir, "pack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	root := filepath.Join(work, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	// The root directory's mode is the image's root mode.
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
	pseudo := filepath.Join(work, "pseudo")
	f, err := os.Create(pseudo)
	if err != nil {
		return err
	}
	err = WritePseudo(f, tree.Entries)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("squashfs: %w", err)
	}
	// mksquashfs writes in place; a temporary name keeps a half-written
	// image from ever carrying the final one.
	tmp := dst + ".tmp"
	argv := append([]string{b.tool()}, Args(root, tmp, pseudo, c.Compression, c.Level, jobs)...)
	if err := req.Runner.Run(ctx, execx.Cmd{Argv: argv}); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("mksquashfs: %w", err)
	}
	return os.Rename(tmp, dst)
}
