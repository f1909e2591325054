// Package pyfiles builds the "pyfiles" target kind: a deterministic zip of
// a pure-Python source tree for spark-submit --py-files
// (spark.submit.pyFiles) or a Spark Connect pyfiles/ artifact, which Spark
// puts on the workers' sys.path.
//
//	target "pyfiles" "app" {
//	  source  = "src"
//	  include = ["**/*.py"]
//	  exclude = ["tests/**"]
//	}
//
// The zip never holds byte-code caches (__pycache__, *.pyc, *.pyo): they
// are tied to one interpreter version and would make the bytes depend on
// what ran in the source tree. Members are sorted, stamped 1980-01-01,
// deflated. Symbolic links are stored as the files they point to (zip
// cannot hold links) and must stay inside the source directory.
//
// The builder must never write outside req.OutDir nor read outside the
// source directory.
package pyfiles

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/internal/archive"
)

// Kind is the first label of the target block.
const Kind = "pyfiles"

// Config is the body of a pyfiles target block.
type Config struct {
	// Source is the directory whose contents become the zip's root: for
	// `import pkg`, point it at the directory holding pkg/.
	Source string `hcl:"source"`
	// Include keeps only matching files (glob patterns with "**",
	// relative to Source); empty keeps everything.
	Include []string `hcl:"include,optional"`
	// Exclude drops matching paths; a matching directory is dropped whole.
	Exclude []string `hcl:"exclude,optional"`
	// Output is the zip's file name; default "<name>.zip".
	Output string `hcl:"output,optional"`
	// Level is the deflate level, 1..9; 0 or unset means 6.
	Level int `hcl:"level,optional"`
}

// Builder builds pyfiles targets.
type Builder struct{}

var (
	_ builders.Builder       = (*Builder)(nil)
	_ builders.InputDeclarer = (*Builder)(nil)
	_ builders.Validator     = (*Builder)(nil)
)

// New returns the pyfiles builder.
func New() *Builder { return &Builder{} }

// Kind implements builders.Builder.
func (*Builder) Kind() string { return Kind }

// Version implements builders.Builder; bump it when the bytes of an
// unchanged configuration change.
func (*Builder) Version() string { return "1" }

// NewConfig implements builders.Builder.
func (*Builder) NewConfig() any { return &Config{} }

func config(cfg any) (*Config, error) { return builders.ConfigAs[Config](Kind, cfg) }

// sourceDir resolves Source against the directory of the declaring file.
func (c *Config) sourceDir(baseDir string) string {
	dir := filepath.FromSlash(c.Source)
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(baseDir, dir)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return filepath.Clean(dir)
}

func (c *Config) output(name string) string {
	if c.Output != "" {
		return c.Output
	}
	return name + ".zip"
}

func (c *Config) collectOptions() archive.CollectOptions {
	return archive.CollectOptions{
		Include:         c.Include,
		Exclude:         c.Exclude,
		SkipPycache:     true,
		FollowSymlinks:  true,
		ConfineSymlinks: true,
	}
}

// Validate implements builders.Validator: the source is a directory, the
// patterns compile, the output is a plain .zip/.egg name and the level is
// in range. It only reads the file system.
func (*Builder) Validate(cfg any, baseDir string) error {
	c, err := config(cfg)
	if err != nil {
		return err
	}
	if c.Source == "" {
		return fmt.Errorf("pyfiles: source is empty; set it to the directory holding your packages")
	}
	dir := c.sourceDir(baseDir)
	info, err := os.Stat(dir)
	switch {
	case err != nil && os.IsNotExist(err):
		return fmt.Errorf("pyfiles: source directory %s does not exist", dir)
	case err != nil:
		return fmt.Errorf("pyfiles: source %s: %w", dir, err)
	case !info.IsDir():
		return fmt.Errorf("pyfiles: source %s is not a directory", dir)
	}
	for _, set := range []struct {
		what string
		ps   []string
	}{{"include", c.Include}, {"exclude", c.Exclude}} {
		for _, p := range set.ps {
			if _, err := archive.CompilePattern(p); err != nil {
				return fmt.Errorf("pyfiles: %s: %w", set.what, err)
			}
		}
	}
	if c.Output != "" {
		if err := checkOutput(c.Output); err != nil {
			return err
		}
	}
	if c.Level < 0 || c.Level > 9 {
		return fmt.Errorf("pyfiles: level %d is out of range; use 1 (fastest) to 9 (smallest), or leave it unset for 6", c.Level)
	}
	return nil
}

func checkOutput(name string) error {
	if strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return fmt.Errorf("pyfiles: output %q must be a file name, not a path", name)
	}
	l := strings.ToLower(name)
	if !strings.HasSuffix(l, ".zip") && !strings.HasSuffix(l, ".egg") {
		return fmt.Errorf("pyfiles: output %q must end in .zip (or .egg): Spark puts only .zip, .egg and .py files on sys.path", name)
	}
	return nil
}

// Inputs implements builders.InputDeclarer: the absolute paths of the
// files that go into the zip (a file reached through a symbolic link is
// listed under the link's path, which reads the same bytes).
func (*Builder) Inputs(cfg any, baseDir string) ([]string, error) {
	c, err := config(cfg)
	if err != nil {
		return nil, err
	}
	es, err := archive.Collect(c.sourceDir(baseDir), c.collectOptions())
	if err != nil {
		return nil, fmt.Errorf("pyfiles: %w", err)
	}
	var out []string
	for _, e := range es {
		if !e.IsDir() {
			out = append(out, e.Source)
		}
	}
	return out, nil
}

// Build implements builders.Builder.
func (b *Builder) Build(ctx context.Context, req *builders.Request) (*builders.Result, error) {
	c, err := config(req.Config)
	if err != nil {
		return nil, err
	}
	if err := b.Validate(c, req.BaseDir); err != nil {
		return nil, err
	}
	name := c.output(req.Name)
	if err := checkOutput(name); err != nil {
		return nil, err
	}
	src := c.sourceDir(req.BaseDir)
	es, err := archive.Collect(src, c.collectOptions())
	if err != nil {
		return nil, fmt.Errorf("pyfiles: %w", err)
	}
	files := 0
	for _, e := range es {
		if !e.IsDir() {
			files++
		}
	}
	if files == 0 {
		return nil, fmt.Errorf("pyfiles: no files in %s match include %q and exclude %q", src, c.Include, c.Exclude)
	}
	out := filepath.Join(req.OutDir, name)
	opts := archive.Options{Level: c.Level, Jobs: req.Jobs, Symlinks: archive.Dereference}
	if err := archive.Write(ctx, out, archive.Zip, es, opts); err != nil {
		return nil, fmt.Errorf("pyfiles %s: %w", req.Address, err)
	}
	if req.Log != nil {
		fmt.Fprintf(req.Log, "pyfiles: wrote %s (%d files from %s)\n", name, files, src)
	}
	return &builders.Result{Metadata: map[string]string{"main": name}}, nil
}
