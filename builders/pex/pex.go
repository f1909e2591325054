package pex

import (
	"bufio"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/condaenv"
	"github.com/sparkenv/sparkenv/internal/archive"
	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/internal/conda/fetch"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/fsutil"
	"github.com/sparkenv/sparkenv/internal/wheel"
)

// Kind is the first label of the target block.
const Kind = "pex"

// scriptPython is the interpreter named by the scripts of the bundled
// wheels. They are never run from their path inside a PEX (the PEX itself is
// the interpreter), so any absolute python does.
const scriptPython = "/usr/bin/python3"

// DefaultShebang is the first line of a PEX unless configured.
const DefaultShebang = "#!/usr/bin/env python3"

//go:embed bootstrap.py
var bootstrap []byte

// Config is the body of a pex target block.
type Config struct {
	// Environment is the address of the environment whose pip wheels go
	// into the PEX, e.g. "environment.etl".
	Environment string `hcl:"environment"`
	// EntryPoint is what runs when the PEX gets no interpreter arguments:
	// "pkg.mod:func" (called; its return value is the exit status) or
	// "pkg.mod" (run as __main__).
	EntryPoint string `hcl:"entry_point,optional"`
	// PythonVersion is the interpreter constraint checked at start-up,
	// e.g. ">=3.10,<3.13", "CPython==3.11.*" or "3.11".
	PythonVersion string `hcl:"python_version,optional"`
	// Sources is a directory whose contents become the root of the PEX
	// (importable like the wheels' packages).
	Sources string `hcl:"sources,optional"`
	// Shebang is the first line of the file; default DefaultShebang.
	Shebang string `hcl:"shebang,optional"`
	// Output is the file name; default "<name>.pex".
	Output string `hcl:"output,optional"`
	// Level is the deflate level, 1..9; 0 or unset means 6.
	Level int `hcl:"level,optional"`
}

// Builder builds pex targets.
type Builder struct{}

var (
	_ builders.Builder       = (*Builder)(nil)
	_ builders.Validator     = (*Builder)(nil)
	_ builders.InputDeclarer = (*Builder)(nil)
)

// New returns the pex builder.
func New() *Builder { return &Builder{} }

// Kind implements builders.Builder.
func (*Builder) Kind() string { return Kind }

// Version implements builders.Builder; bump it when the bytes of an
// unchanged configuration change (including any edit of bootstrap.py).
func (*Builder) Version() string { return "1" }

// NewConfig implements builders.Builder.
func (*Builder) NewConfig() any { return &Config{} }

func config(cfg any) (*Config, error) { return builders.ConfigAs[Config](Kind, cfg) }

func (c *Config) output(name string) string {
	if c.Output != "" {
		return c.Output
	}
	return name + ".pex"
}

func (c *Config) shebang() string {
	if c.Shebang != "" {
		return c.Shebang
	}
	return DefaultShebang
}

func (c *Config) sourceDir(baseDir string) string {
	dir := filepath.FromSlash(c.Sources)
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(baseDir, dir)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return filepath.Clean(dir)
}

var sourceCollect = archive.CollectOptions{SkipPycache: true, FollowSymlinks: true, ConfineSymlinks: true}

// Validate implements builders.Validator.
func (*Builder) Validate(cfg any, baseDir string) error {
	c, err := config(cfg)
	if err != nil {
		return err
	}
	if c.Environment == "" {
		return fmt.Errorf("pex: environment is empty; set environment = environment.<name>")
	}
	if c.PythonVersion != "" {
		if _, err := ParseConstraint(c.PythonVersion); err != nil {
			return fmt.Errorf("pex: python_version: %w", err)
		}
	}
	if c.EntryPoint != "" {
		if err := checkEntryPoint(c.EntryPoint); err != nil {
			return err
		}
	}
	sb := c.shebang()
	if !strings.HasPrefix(sb, "#!") || strings.ContainsAny(sb, "\r\n\x00") || len(sb) > 127 {
		return fmt.Errorf("pex: shebang %q must be one line starting with #! and at most 127 bytes (Linux truncates longer ones)", sb)
	}
	name := c.output("x")
	if strings.ContainsAny(name, `/\`) || name == "." || name == ".." || strings.HasPrefix(name, ".") {
		return fmt.Errorf("pex: output %q must be a plain file name, not a path", name)
	}
	if c.Level < 0 || c.Level > 9 {
		return fmt.Errorf("pex: level %d is out of range; use 1 (fastest) to 9 (smallest), or leave it unset for 6", c.Level)
	}
	if c.Sources != "" {
		dir := c.sourceDir(baseDir)
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			return fmt.Errorf("pex: sources %s is not a directory", dir)
		}
	}
	return nil
}

// checkEntryPoint accepts "a.b", "a.b:c" and "a.b:c.d" with Python
// identifiers.
func checkEntryPoint(ep string) error {
	mod, attr, colon := strings.Cut(ep, ":")
	ok := dotted(mod) && (!colon || dotted(attr))
	if !ok {
		return fmt.Errorf("pex: entry_point %q: want \"package.module\" or \"package.module:function\"", ep)
	}
	return nil
}

func dotted(s string) bool {
	if s == "" {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return false
		}
		for i, r := range part {
			letter := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > 127
			if !letter && (i == 0 || r < '0' || r > '9') {
				return false
			}
		}
	}
	return true
}

// Inputs implements builders.InputDeclarer: the files of the sources
// directory.
func (*Builder) Inputs(cfg any, baseDir string) ([]string, error) {
	c, err := config(cfg)
	if err != nil {
		return nil, err
	}
	if c.Sources == "" {
		return nil, nil
	}
	es, err := archive.Collect(c.sourceDir(baseDir), sourceCollect)
	if err != nil {
		return nil, fmt.Errorf("pex: sources: %w", err)
	}
	var out []string
	for _, e := range es {
		if !e.IsDir() {
			out = append(out, e.Source)
		}
	}
	return out, nil
}

// Info is the PEX-INFO document. Field names follow the pex project's
// format so that its tools can read the file.
type Info struct {
	BuildProperties map[string]string `json:"build_properties"`
	CodeHash        string            `json:"code_hash"`
	// Distributions maps each wheel file name (a directory under .deps/)
	// to the wheel's sha256.
	Distributions          map[string]string `json:"distributions"`
	EntryPoint             string            `json:"entry_point,omitempty"`
	InheritPath            string            `json:"inherit_path"`
	InterpreterConstraints []string          `json:"interpreter_constraints"`
	// PexHash names the directory the bootstrap unpacks into; it changes
	// whenever any byte of the PEX's payload does.
	PexHash      string   `json:"pex_hash"`
	PexRoot      string   `json:"pex_root"`
	Requirements []string `json:"requirements"`
	ZipSafe      bool     `json:"zip_safe"`
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
	res, err := condaenv.Resolved(req, c.Environment)
	if err != nil {
		return nil, fmt.Errorf("pex %s: %w", req.Address, err)
	}
	env := res.Environment
	var constraints []string
	switch {
	case c.PythonVersion != "":
		k, _ := ParseConstraint(c.PythonVersion)
		constraints = []string{k.String()}
	case condaenv.PythonVersion(env) != "":
		constraints = []string{"==" + condaenv.PythonVersion(env) + ".*"}
	}
	logf(req, "pex: %s: %d wheels; %d conda packages of %s are not part of a PEX", req.Address, len(env.Pip), len(env.Packages), c.Environment)
	constraints, err = checkWheelPythons(req, env.Pip, constraints)
	if err != nil {
		return nil, fmt.Errorf("pex %s: %w", req.Address, err)
	}

	paths, err := FetchWheels(ctx, req, env.Pip)
	if err != nil {
		return nil, fmt.Errorf("pex %s: %w", req.Address, err)
	}
	stage, err := os.MkdirTemp(req.TempDir, "pex-deps-")
	if err != nil {
		return nil, err
	}
	entries := []archive.Entry{}
	dists := map[string]string{}
	var reqs []string
	if len(env.Pip) > 0 {
		entries = append(entries, archive.Entry{Path: ".deps", Mode: fs.ModeDir | 0o755})
	}
	for i, w := range env.Pip {
		if _, dup := dists[w.Filename]; dup {
			return nil, fmt.Errorf("pex %s: wheel %s is listed twice in %s", req.Address, w.Filename, c.Environment)
		}
		dists[w.Filename] = strings.ToLower(w.SHA256)
		reqs = append(reqs, w.Name+"=="+w.Version)
		dir := filepath.Join(stage, w.Filename)
		// The installed form of a wheel (PEX's .deps layout): its
		// libraries at the root, scripts and data under .prefix/, every
		// file checked against the wheel's RECORD.
		prefix := filepath.Join(dir, ".prefix")
		_, err := wheel.Install(ctx, paths[i], wheel.Scheme{
			Purelib: dir, Platlib: dir, Scripts: filepath.Join(prefix, "bin"), Data: prefix,
			Headers: filepath.Join(prefix, "include", "site", "python", w.Name),
			Python:  scriptPython,
		}, wheel.Options{})
		if err != nil {
			return nil, fmt.Errorf("pex %s: %w", req.Address, err)
		}
		es, err := archive.Collect(dir, archive.CollectOptions{})
		if err != nil {
			return nil, fmt.Errorf("pex %s: %w", req.Address, err)
		}
		member := ".deps/" + w.Filename
		entries = append(entries, archive.Entry{Path: member, Mode: fs.ModeDir | 0o755})
		for _, e := range es {
			e.Path = member + "/" + e.Path
			entries = append(entries, e)
		}
	}
	sort.Strings(reqs)

	var code []archive.Entry
	if c.Sources != "" {
		code, err = archive.Collect(c.sourceDir(req.BaseDir), sourceCollect)
		if err != nil {
			return nil, fmt.Errorf("pex %s: sources: %w", req.Address, err)
		}
		for _, e := range code {
			top, _, _ := strings.Cut(e.Path, "/")
			if top == "__main__.py" || top == "PEX-INFO" || top == ".deps" {
				return nil, fmt.Errorf("pex %s: sources hold %s, a name the PEX itself uses; rename it", req.Address, e.Path)
			}
		}
		entries = append(entries, code...)
	}
	codeHash, err := hashEntries(code)
	if err != nil {
		return nil, fmt.Errorf("pex %s: %w", req.Address, err)
	}
	info := Info{
		BuildProperties:        map[string]string{"builder": "sparkenv", "builder_version": b.Version()},
		CodeHash:               codeHash,
		Distributions:          dists,
		EntryPoint:             c.EntryPoint,
		InheritPath:            "false",
		InterpreterConstraints: constraints,
		PexRoot:                "~/.pex",
		Requirements:           reqs,
	}
	if info.InterpreterConstraints == nil {
		info.InterpreterConstraints = []string{}
	}
	if info.Requirements == nil {
		info.Requirements = []string{}
	}
	info.PexHash = pexHash(info)
	infoJSON, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return nil, err
	}
	entries = append(entries,
		archive.Entry{Path: "__main__.py", Mode: 0o644, Data: bootstrap},
		archive.Entry{Path: "PEX-INFO", Mode: 0o644, Data: append(infoJSON, '\n')},
	)

	name := c.output(req.Name)
	out := filepath.Join(req.OutDir, name)
	opts := archive.Options{Level: c.Level, Jobs: req.Jobs, Symlinks: archive.Dereference}
	err = fsutil.WriteFileFrom(out, 0o755, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		if _, err := bw.WriteString(c.shebang() + "\n"); err != nil {
			return err
		}
		if err := archive.Encode(ctx, bw, archive.Zip, entries, opts); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return nil, fmt.Errorf("pex %s: %w", req.Address, err)
	}
	logf(req, "pex: wrote %s (%d distributions, %d source files, constraints %q)", name, len(dists), countFiles(code), constraints)
	return &builders.Result{Metadata: map[string]string{
		"main":                    name,
		"interpreter_constraints": strings.Join(constraints, " || "),
	}}, nil
}

// checkWheelPythons compares the wheels' CPython versions with the
// constraints. Without constraints, wheels that all name one version make
// it the constraint, so that another interpreter is refused with a clear
// message at start-up rather than an ImportError deep in a worker. With
// constraints, a version they allow but a wheel does not support is
// reported in the log.
func checkWheelPythons(req *builders.Request, ws []lock.Wheel, constraints []string) ([]string, error) {
	common := map[string]bool(nil)
	var limited []string
	for _, w := range ws {
		vs, err := WheelPythons(w.Filename)
		if err != nil {
			return nil, err
		}
		if vs == nil {
			continue
		}
		limited = append(limited, w.Filename)
		next := map[string]bool{}
		for _, v := range vs {
			if common == nil || common[v] {
				next[v] = true
			}
		}
		common = next
	}
	if common == nil {
		return constraints, nil
	}
	if len(common) == 0 {
		return nil, fmt.Errorf("the wheels %s share no CPython version: no interpreter can import them all", strings.Join(limited, ", "))
	}
	if len(constraints) == 0 {
		if len(common) == 1 {
			for v := range common {
				logf(req, "pex: interpreter constraint ==%s.* taken from the wheels %s", v, strings.Join(limited, ", "))
				return []string{"==" + v + ".*"}, nil
			}
		}
		return constraints, nil
	}
	for _, s := range constraints {
		k, err := ParseConstraint(s)
		if err != nil {
			return nil, err
		}
		var missing []string
		for _, v := range minorsAllowed(k) {
			if !common[v] {
				missing = append(missing, v)
			}
		}
		if len(missing) > 0 {
			logf(req, "pex: WARNING: python_version %s allows Python %s, which the wheels %s do not support: they will fail to import there", s, strings.Join(missing, ", "), strings.Join(limited, ", "))
		}
	}
	return constraints, nil
}

func logf(req *builders.Request, format string, args ...any) {
	if req.Log != nil {
		fmt.Fprintf(req.Log, format+"\n", args...)
	}
}

func countFiles(es []archive.Entry) int {
	n := 0
	for _, e := range es {
		if !e.IsDir() {
			n++
		}
	}
	return n
}

// hashEntries digests paths and contents of the files among es.
func hashEntries(es []archive.Entry) (string, error) {
	h := sha256.New()
	for _, e := range es {
		if e.IsDir() {
			continue
		}
		sum, _, err := artifact.HashFile(e.Source)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%s\n", e.Path, sum)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// pexHash covers everything that reaches the unpacked directory: the
// wheels (by their verified digests, which fix their contents), the user
// code, and the bootstrap and settings that decide how they are used.
func pexHash(info Info) string {
	pre := struct {
		Type        string            `json:"type"`
		Bootstrap   string            `json:"bootstrap"`
		Dists       map[string]string `json:"distributions"`
		Code        string            `json:"code_hash"`
		EntryPoint  string            `json:"entry_point"`
		Constraints []string          `json:"interpreter_constraints"`
	}{"sparkenv.pex.v1", fmt.Sprintf("%x", sha256.Sum256(bootstrap)), info.Distributions, info.CodeHash, info.EntryPoint, info.InterpreterConstraints}
	b, _ := json.Marshal(pre)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:20])
}

// FetchWheels makes every wheel of ws present in the request's package
// cache, verified against its sha256, and returns the paths in order.
func FetchWheels(ctx context.Context, req *builders.Request, ws []lock.Wheel) ([]string, error) {
	if len(ws) == 0 {
		return nil, nil
	}
	if req.PackageCacheDir == "" {
		return nil, fmt.Errorf("no package cache directory to fetch wheels into")
	}
	items := make([]fetch.Item, len(ws))
	for i, w := range ws {
		if _, _, _, _, err := wheel.ParseFilename(w.Filename); err != nil {
			return nil, fmt.Errorf("pip package %s: %w", w.Name, err)
		}
		if w.SHA256 == "" {
			return nil, fmt.Errorf("wheel %s (%s): the lock has no sha256 to verify it; lock the environment again", w.Filename, w.URL)
		}
		items[i] = fetch.Item{URL: w.URL, SHA256: w.SHA256, Size: w.Size, FileName: w.Filename}
	}
	cache := &fetch.Cache{Dir: req.PackageCacheDir}
	paths, err := cache.Fetch(ctx, items, fetch.Options{Offline: req.Offline, Jobs: req.Jobs})
	if err != nil {
		return nil, fmt.Errorf("fetch wheels: %w", err)
	}
	return paths, nil
}
