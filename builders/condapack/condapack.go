package condapack

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/condaenv"
	"github.com/sparkenv/sparkenv/internal/archive"
)

// Kind is the target kind.
const Kind = "conda_pack"

// DefaultAlias is the directory name Spark unpacks the archive into.
const DefaultAlias = "environment"

// DefaultLevel is the compression level when none is set, as in conda-pack.
const DefaultLevel = 4

// Config is the body of a conda_pack target block.
type Config struct {
	Environment string `hcl:"environment"`
	// Format is "tar.gz" (default), "tar.zst" or "zip".
	Format string `hcl:"format,optional"`
	// Level of the compressor: gzip and zip 1..9, zstd 1..22; default 4.
	Level int `hcl:"level,optional"`
	// DestPrefix patches the environment at pack time for this absolute
	// path; the archive then ships no conda-unpack.
	DestPrefix string `hcl:"dest_prefix,optional"`
	// Symlinks is what to do with symbolic links: "keep" (tar formats
	// only, their default), "refuse" (zip default) or "dereference".
	Symlinks string `hcl:"symlinks,optional"`
	// Alias is the directory Spark unpacks into (the #fragment of the
	// archive URL); default "environment".
	Alias string `hcl:"alias,optional"`
	// CompilePyc compiles hash-based .pyc files (default true).
	CompilePyc *bool `hcl:"compile_pyc,optional"`
	// Output file name; default "<name>.<format>". Its suffix must match
	// the format: Spark picks the unpacker by suffix.
	Output string `hcl:"output,optional"`
}

// Builder builds conda_pack archives.
type Builder struct{}

var (
	_ builders.Builder   = (*Builder)(nil)
	_ builders.Validator = (*Builder)(nil)
)

// New returns the conda_pack builder.
func New() *Builder { return &Builder{} }

func (*Builder) Kind() string    { return Kind }
func (*Builder) Version() string { return "1" }
func (*Builder) NewConfig() any  { return &Config{} }

var formats = map[string]archive.Format{"tar.gz": archive.TarGz, "tar.zst": archive.TarZst, "zip": archive.Zip}

func (c *Config) format() archive.Format {
	if c.Format == "" {
		return archive.TarGz
	}
	return formats[c.Format]
}

func (c *Config) formatName() string {
	if c.Format == "" {
		return "tar.gz"
	}
	return c.Format
}

func (c *Config) level() int {
	if c.Level == 0 {
		return DefaultLevel
	}
	return c.Level
}

func (c *Config) alias() string {
	if c.Alias == "" {
		return DefaultAlias
	}
	return c.Alias
}

func (c *Config) output(name string) string {
	if c.Output != "" {
		return c.Output
	}
	return name + "." + c.formatName()
}

func (c *Config) symlinks() archive.SymlinkPolicy {
	switch c.Symlinks {
	case "refuse":
		return archive.Refuse
	case "dereference":
		return archive.Dereference
	case "keep":
		return archive.Keep
	}
	if c.format() == archive.Zip {
		return archive.Refuse
	}
	return archive.Keep
}

// Validate checks the configuration.
func (*Builder) Validate(cfg any, baseDir string) error {
	c := cfg.(*Config)
	if c.Format != "" {
		if _, ok := formats[c.Format]; !ok {
			return fmt.Errorf("format %q is not one of tar.gz, tar.zst, zip", c.Format)
		}
	}
	max := 9
	if c.format() == archive.TarZst {
		max = 22
	}
	if c.Level < 0 || c.Level > max {
		return fmt.Errorf("level %d is out of range for %s (1..%d)", c.Level, c.formatName(), max)
	}
	if c.DestPrefix != "" {
		if !filepath.IsAbs(c.DestPrefix) || filepath.Clean(c.DestPrefix) != c.DestPrefix || c.DestPrefix == "/" {
			return fmt.Errorf("dest_prefix %q must be a clean absolute path other than /", c.DestPrefix)
		}
	}
	switch c.Symlinks {
	case "", "refuse", "dereference":
	case "keep":
		if c.format() == archive.Zip {
			return fmt.Errorf(`symlinks = "keep" is impossible with zip: Spark unpacks zip archives with Java code that drops symbolic links; use "refuse" or "dereference"`)
		}
	default:
		return fmt.Errorf("symlinks %q is not one of keep, refuse, dereference", c.Symlinks)
	}
	if a := c.Alias; a != "" && (strings.ContainsAny(a, "/#\\ \t\n") || a == "." || a == "..") {
		return fmt.Errorf("alias %q must be a plain directory name (no /, # or spaces)", a)
	}
	if o := c.Output; o != "" {
		if strings.Contains(o, "/") || o == "." || o == ".." {
			return fmt.Errorf("output %q must be a plain file name", o)
		}
		f, err := archive.FormatOf(o)
		if err != nil || f != c.format() {
			return fmt.Errorf("output %q must end in .%s: Spark chooses how to unpack an archive by its suffix", o, c.formatName())
		}
	}
	return nil
}

// Build installs the environment, for dest_prefix or for PackPrefix, and
// packs it.
func (b *Builder) Build(ctx context.Context, req *builders.Request) (*builders.Result, error) {
	c := req.Config.(*Config)
	if err := b.Validate(c, req.BaseDir); err != nil {
		return nil, fmt.Errorf("%s: %w", req.Address, err)
	}
	res, err := condaenv.Resolved(req, c.Environment)
	if err != nil {
		return nil, err
	}
	prefix := c.DestPrefix
	relocatable := prefix == ""
	if relocatable {
		room, err := binaryRoom(ctx, req, res.Environment)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", req.Address, err)
		}
		prefix = padPrefix(packBase, room)
		if room < maxRoom {
			fmt.Fprintf(req.Log, "warning: a package has a %d-byte binary placeholder: the archive can be unpacked (with conda-unpack) only into a path of at most %d bytes\n", room, room)
		}
	}
	stage := filepath.Join(req.TempDir, "root")
	rep, err := condaenv.Stage(ctx, req, res, stage, prefix)
	if err != nil {
		if relocatable {
			return nil, fmt.Errorf("%s: install for the packing prefix: %w (set dest_prefix to pack for a known destination)", req.Address, err)
		}
		return nil, fmt.Errorf("%s: %w", req.Address, err)
	}
	fmt.Fprintf(req.Log, "installed %d packages, %d files for %s\n", len(res.Environment.Packages), rep.Files, prefix)
	for _, s := range rep.LinkScripts {
		fmt.Fprintf(req.Log, "warning: link script %s was not run\n", s)
	}
	audit, err := Audit(ctx, stage, req.Jobs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", req.Address, err)
	}
	for _, p := range audit.Overwritten {
		fmt.Fprintf(req.Log, "warning: %s differs from what conda installed (overwritten by pip?)\n", p)
	}
	for _, p := range audit.Missing {
		fmt.Fprintf(req.Log, "warning: %s was installed by conda and is missing\n", p)
	}
	if err := audit.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", req.Address, err)
	}
	if c.CompilePyc == nil || *c.CompilePyc {
		done, err := condaenv.AddCachedPyc(ctx, req, res, stage, prefix)
		if err != nil {
			return nil, err
		}
		if !done {
			fmt.Fprintf(req.Log, "no python for %s runs here: .pyc files are not compiled\n", res.Environment.Platform)
		}
	}
	out := c.output(req.Name)
	prep, err := Pack(ctx, stage, filepath.Join(req.OutDir, out), PackOptions{
		Format: c.format(), Level: c.level(), Jobs: req.Jobs, Symlinks: c.symlinks(), Relocatable: relocatable, Prefix: prefix,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", req.Address, err)
	}
	if relocatable {
		fmt.Fprintf(req.Log, "%s: %d files hold the packing prefix and are rewritten by bin/conda-unpack\n", out, prep.Relocated)
	}
	md := map[string]string{
		"main":        out,
		"format":      c.formatName(),
		"python":      condaenv.PythonVersion(res.Environment),
		"platform":    res.Environment.Platform,
		"alias":       c.alias(),
		"interpreter": "bin/python",
	}
	if !relocatable {
		md["dest_prefix"] = prefix
	}
	return &builders.Result{Metadata: md}, nil
}
