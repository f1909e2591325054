// Package squashfs builds the "squashfs" target: an environment installed
// for the path where the image will be mounted on every node (/opt/conda by
// default), with hash-based .pyc files, packed by mksquashfs with flags that
// make the image bit-identical from one build to the next.
package squashfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/condaenv"
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
func (*Builder) Version() string { return "1" }
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

// Build installs the environment for the mount point and packs it.
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
	stage := filepath.Join(req.TempDir, "root")
	rep, err := condaenv.Stage(ctx, req, res, stage, mount)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(req.Log, "installed %d packages, %d files for %s\n", len(res.Environment.Packages), rep.Files, mount)
	if c.CompilePyc == nil || *c.CompilePyc {
		done, err := condaenv.CompilePyc(ctx, req, res.Environment, stage, mount)
		if err != nil {
			return nil, err
		}
		if !done {
			fmt.Fprintf(req.Log, "no python for %s runs here: .pyc files are not compiled\n", res.Environment.Platform)
		}
	}
	out := c.Output
	if out == "" {
		out = req.Name + ".sqfs"
	}
	if err := b.pack(ctx, req, stage, filepath.Join(req.OutDir, out), c); err != nil {
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
func Args(src, dst, compression string, level, processors int) []string {
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
	return args
}

func (b *Builder) pack(ctx context.Context, req *builders.Request, stage, dst string, c *Config) error {
	jobs := req.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	// mksquashfs writes in place; a temporary name keeps a half-written
	// image from ever carrying the final one.
	tmp := dst + ".tmp"
	argv := append([]string{b.tool()}, Args(stage, tmp, c.Compression, c.Level, jobs)...)
	if err := req.Runner.Run(ctx, execx.Cmd{Argv: argv}); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("mksquashfs: %w", err)
	}
	return os.Rename(tmp, dst)
}
