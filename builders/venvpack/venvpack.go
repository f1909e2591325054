package venvpack

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/condaenv"
	"github.com/sparkenv/sparkenv/builders/pex"
	"github.com/sparkenv/sparkenv/internal/archive"
	"github.com/sparkenv/sparkenv/internal/execx"
	"github.com/sparkenv/sparkenv/internal/fsutil"
	"github.com/sparkenv/sparkenv/internal/wheel"
)

// Kind is the first label of the target block.
const Kind = "venv_pack"

// Config is the body of a venv_pack target block.
type Config struct {
	// Environment is the address of the environment whose pip wheels are
	// installed, e.g. "environment.etl".
	Environment string `hcl:"environment"`
	// Python is the absolute path of the interpreter on the cluster
	// nodes. Required unless Copies is set.
	Python string `hcl:"python,optional"`
	// PythonVersion is that interpreter's version, "X.Y" or "X.Y.Z". When
	// unset it is taken from the environment's conda python, or from a
	// python path ending in pythonX.Y.
	PythonVersion string `hcl:"python_version,optional"`
	// Copies takes the interpreter from the environment's conda python
	// and copies it into the archive instead of linking to Python.
	Copies bool `hcl:"copies,optional"`
	// Format is "tar.gz" (default), "tar" or "tar.zst". A zip cannot hold
	// the interpreter links.
	Format string `hcl:"format,optional"`
	// Output is the archive's file name; default "<name>.<format>".
	Output string `hcl:"output,optional"`
	// CheckPython (default true) warns when Python is absent on this
	// machine and fails when the interpreter found there is not
	// PythonVersion.
	CheckPython *bool `hcl:"check_python,optional"`
	// Compile (default true) compiles the installed Python files into
	// unchecked-hash .pyc files when the interpreter runs on this machine
	// (linked: python exists here and is python_version; copies: the
	// environment's platform is this one), so executors import at full
	// speed from the first start.
	Compile *bool `hcl:"compile,optional"`
	// Level is the compression level; 0 means the format's default.
	Level int `hcl:"level,optional"`
}

// Builder builds venv_pack targets.
type Builder struct{}

var (
	_ builders.Builder       = (*Builder)(nil)
	_ builders.Validator     = (*Builder)(nil)
	_ builders.ToolVersioner = (*Builder)(nil)
)

// New returns the venv_pack builder.
func New() *Builder { return &Builder{} }

// Kind implements builders.Builder.
func (*Builder) Kind() string { return Kind }

// Version implements builders.Builder; bump it when the bytes of an
// unchanged configuration change.
func (*Builder) Version() string { return "1" }

// NewConfig implements builders.Builder.
func (*Builder) NewConfig() any { return &Config{} }

func config(cfg any) (*Config, error) { return builders.ConfigAs[Config](Kind, cfg) }

func (c *Config) format() (archive.Format, error) {
	switch c.Format {
	case "", "tar.gz", "tgz":
		return archive.TarGz, nil
	case "tar":
		return archive.Tar, nil
	case "tar.zst", "tzst":
		return archive.TarZst, nil
	case "zip":
		return 0, fmt.Errorf("venv_pack: format zip cannot hold the interpreter's symbolic links (Spark would lose them); use tar.gz")
	}
	return 0, fmt.Errorf("venv_pack: format %q is not one of tar.gz, tar, tar.zst", c.Format)
}

func (c *Config) output(name string) string {
	if c.Output != "" {
		return c.Output
	}
	f, err := c.format()
	if err != nil {
		return name
	}
	return name + "." + f.String()
}

func (c *Config) checkPython() bool { return c.CheckPython == nil || *c.CheckPython }

func (c *Config) compile() bool { return c.Compile == nil || *c.Compile }

var (
	versionRe  = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?$`)
	exeVersion = regexp.MustCompile(`python(\d+\.\d+)$`)
)

// Validate implements builders.Validator.
func (*Builder) Validate(cfg any, baseDir string) error {
	c, err := config(cfg)
	if err != nil {
		return err
	}
	if c.Environment == "" {
		return fmt.Errorf("venv_pack: environment is empty; set environment = environment.<name>")
	}
	if !c.Copies {
		if c.Python == "" {
			return fmt.Errorf("venv_pack: python is empty; set it to the interpreter's absolute path on the cluster nodes (e.g. /usr/bin/python3.11), or set copies = true to ship the environment's own python")
		}
		if !path.IsAbs(c.Python) || path.Clean(c.Python) != c.Python || strings.ContainsAny(c.Python, "\n\x00") {
			return fmt.Errorf("venv_pack: python %q must be a clean absolute path of the interpreter on the cluster nodes", c.Python)
		}
	}
	if c.PythonVersion != "" && !versionRe.MatchString(c.PythonVersion) {
		return fmt.Errorf("venv_pack: python_version %q must be X.Y or X.Y.Z, e.g. 3.11", c.PythonVersion)
	}
	if _, err := c.format(); err != nil {
		return err
	}
	if c.Output != "" {
		if strings.ContainsAny(c.Output, `/\`) || strings.HasPrefix(c.Output, ".") {
			return fmt.Errorf("venv_pack: output %q must be a plain file name, not a path", c.Output)
		}
		f, _ := c.format()
		if got, err := archive.FormatOf(c.Output); err != nil || got != f {
			return fmt.Errorf("venv_pack: output %q does not end in .%s (the format)", c.Output, f)
		}
	}
	return nil
}

// version returns the full version to record and its major.minor.
func (c *Config) version(condaPython string) (full, xy string, err error) {
	full = c.PythonVersion
	switch {
	case full != "":
	case condaPython != "":
		full = condaPython
	default:
		m := exeVersion.FindStringSubmatch(c.Python)
		if m == nil {
			return "", "", fmt.Errorf("venv_pack: cannot tell the version of %s; set python_version = \"X.Y\"", c.Python)
		}
		full = m[1]
	}
	m := versionRe.FindStringSubmatch(full)
	if m == nil {
		return "", "", fmt.Errorf("venv_pack: python version %q is not X.Y[.Z]", full)
	}
	return full, m[1] + "." + m[2], nil
}

// ToolVersions implements builders.ToolVersioner: the .pyc files compiled
// with the nodes' interpreter depend on its exact version, and whether it
// exists here decides whether there are any.
func (*Builder) ToolVersions(ctx context.Context, cfg any) (map[string]string, error) {
	c, err := config(cfg)
	if err != nil {
		return nil, err
	}
	if c.Copies || !c.compile() || !c.checkPython() {
		return nil, nil
	}
	out, err := (&execx.Runner{}).Output(ctx, execx.Cmd{Argv: []string{c.Python, "-c", "import sys; print(sys.version)"}})
	if err != nil {
		return map[string]string{"python": "absent"}, nil
	}
	return map[string]string{"python": strings.TrimSpace(string(out))}, nil
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
	format, _ := c.format()
	res, err := condaenv.Resolved(req, c.Environment)
	if err != nil {
		return nil, fmt.Errorf("venv_pack %s: %w", req.Address, err)
	}
	env := res.Environment
	condaPy := ""
	for _, r := range env.Packages {
		if r.Name == "python" {
			condaPy = r.Version
		}
	}
	if c.Copies && condaPy == "" {
		return nil, fmt.Errorf("venv_pack %s: copies = true takes the interpreter from the environment, but %s has no python package; add python to its conda specs", req.Address, c.Environment)
	}
	full, xy, err := c.version(condaPy)
	if err != nil {
		return nil, err
	}
	if m := exeVersion.FindStringSubmatch(c.Python); !c.Copies && m != nil && m[1] != xy {
		return nil, fmt.Errorf("venv_pack %s: python %s names Python %s, but the environment is for Python %s (python_version or the environment's conda python); site-packages would be lib/python%s, which that interpreter does not read", req.Address, c.Python, m[1], xy, xy)
	}
	if c.Copies && !strings.HasPrefix(condaPy+".", xy+".") {
		return nil, fmt.Errorf("venv_pack %s: python_version %s differs from the environment's python %s", req.Address, full, condaPy)
	}

	for _, w := range env.Pip {
		vs, err := pex.WheelPythons(w.Filename)
		if err != nil {
			return nil, fmt.Errorf("venv_pack %s: %w", req.Address, err)
		}
		if vs != nil && !slices.Contains(vs, xy) {
			return nil, fmt.Errorf("venv_pack %s: wheel %s is built for CPython %s, but the environment is for Python %s", req.Address, w.Filename, strings.Join(vs, ", "), xy)
		}
	}

	stage, err := os.MkdirTemp(req.TempDir, "venv-")
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(stage, "bin")
	site := filepath.Join(stage, "lib", "python"+xy, "site-packages")
	for _, d := range []string{bin, site} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	major := strings.SplitN(xy, ".", 2)[0]
	warn := ""
	if c.Copies {
		if err := copyInterpreter(ctx, req, res, stage, xy); err != nil {
			return nil, fmt.Errorf("venv_pack %s: %w", req.Address, err)
		}
	} else {
		warn, err = checkInterpreter(ctx, req, c, xy)
		if err != nil {
			return nil, fmt.Errorf("venv_pack %s: %w", req.Address, err)
		}
		for _, name := range []string{"python", "python" + major, "python" + xy} {
			if err := os.Symlink(c.Python, filepath.Join(bin, name)); err != nil {
				return nil, err
			}
		}
		cfg := fmt.Sprintf("home = %s\ninclude-system-site-packages = false\nversion = %s\n", path.Dir(c.Python), full)
		if err := os.WriteFile(filepath.Join(stage, "pyvenv.cfg"), []byte(cfg), 0o644); err != nil {
			return nil, err
		}
	}
	if err := os.Symlink("lib", filepath.Join(stage, "lib64")); err != nil {
		return nil, err
	}

	paths, err := pex.FetchWheels(ctx, req, env.Pip)
	if err != nil {
		return nil, fmt.Errorf("venv_pack %s: %w", req.Address, err)
	}
	relocated := 0
	for i, w := range env.Pip {
		inst, err := wheel.Install(ctx, paths[i], wheel.Scheme{
			Purelib: site, Platlib: site, Scripts: bin, Data: stage,
			Headers: filepath.Join(stage, "include", "site", "python"+xy, w.Name),
			Python:  placeholderPython,
		}, wheel.Options{Requested: true})
		if err != nil {
			return nil, fmt.Errorf("venv_pack %s: %w", req.Address, err)
		}
		changed := map[string]bool{}
		for _, s := range inst.Scripts {
			n, err := relocateFile(s)
			if err != nil {
				return nil, fmt.Errorf("venv_pack %s: %w", req.Address, err)
			}
			if n > 0 {
				changed[filepath.Clean(s)] = true
			}
			relocated += n
		}
		if err := fixRecord(inst.DistInfo, site, changed); err != nil {
			return nil, fmt.Errorf("venv_pack %s: %w", req.Address, err)
		}
	}

	compiled := "no .pyc files"
	if c.compile() {
		py, dir, why := "", site, ""
		switch {
		case !canCompile(xy):
			why = "Python " + xy + " lacks compileall's stripdir (3.9+)"
		case c.Copies && condaenv.HostRuns(env.Platform):
			py, dir = filepath.Join(bin, "python"+xy), filepath.Join(stage, "lib", "python"+xy)
		case c.Copies:
			why = "the environment's platform " + env.Platform + " does not run here"
		case warn == "" && c.checkPython():
			py = c.Python
		default:
			why = c.Python + " is not a checked interpreter on this machine"
		}
		if py == "" {
			logf(req, "venv_pack: .pyc files not compiled (%s); executors compile them on first import", why)
		} else {
			if err := compilePyc(ctx, req, py, dir, stage); err != nil {
				return nil, fmt.Errorf("venv_pack %s: %w", req.Address, err)
			}
			compiled = "unchecked-hash .pyc files"
		}
	}

	prompt := req.Name
	files := map[string][]byte{
		"bin/activate":      activate(activateSh, prompt),
		"bin/activate.fish": activate(activateFish, prompt),
	}
	name := c.output(req.Name)
	var body string
	if c.Copies {
		body = fmt.Sprintf(readmeCopies, condaPy, xy)
	} else {
		body = fmt.Sprintf(readmeLinked, c.Python, major, xy, full)
	}
	files["README.txt"] = []byte(fmt.Sprintf(readme, req.Address, interpreterLine(c), body, name))
	for p, data := range files {
		if err := os.WriteFile(filepath.Join(stage, filepath.FromSlash(p)), data, 0o644); err != nil {
			return nil, err
		}
	}

	es, err := archive.Collect(stage, archive.CollectOptions{})
	if err != nil {
		return nil, fmt.Errorf("venv_pack %s: %w", req.Address, err)
	}
	out := filepath.Join(req.OutDir, name)
	if err := archive.Write(ctx, out, format, es, archive.Options{Level: c.Level, Jobs: req.Jobs, Symlinks: archive.Keep}); err != nil {
		return nil, fmt.Errorf("venv_pack %s: %w", req.Address, err)
	}
	if warn != "" {
		logf(req, "%s", warn)
	}
	logf(req, "venv_pack: wrote %s (%d wheels, %d scripts made relocatable, %s, python %s)", name, len(env.Pip), relocated, compiled, interpreterLine(c))
	md := map[string]string{"main": name, "python_version": xy, "python": "bin/python"}
	if !c.Copies {
		md["interpreter"] = c.Python
	}
	return &builders.Result{Metadata: md}, nil
}

func interpreterLine(c *Config) string {
	if c.Copies {
		return "copied from the environment's conda python"
	}
	return c.Python
}

func logf(req *builders.Request, format string, args ...any) {
	if req.Log != nil {
		fmt.Fprintf(req.Log, format+"\n", args...)
	}
}

// relocateFile rewrites one installed script in place; it reports 1 when
// it was rewritten.
func relocateFile(p string) (int, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	out, ok, err := relocateScript(data)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", filepath.Base(p), err)
	}
	if !ok {
		return 0, nil
	}
	if err := fsutil.WriteFile(p, out, 0o755); err != nil {
		return 0, err
	}
	return 1, nil
}

// checkInterpreter looks for the nodes' interpreter on this machine. An
// absent one is the classic failure of linked environments, so it gets a
// warning that says what will break; a present one must be of the
// configured major.minor.
func checkInterpreter(ctx context.Context, req *builders.Request, c *Config, xy string) (string, error) {
	if !c.checkPython() {
		return "", nil
	}
	st, err := os.Stat(c.Python)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Sprintf("venv_pack: WARNING: %s is not an interpreter on this machine. bin/python of %s links to it, so the archive will only work where %s exists (every Spark node, at that exact path, Python %s); elsewhere bin/python is a dangling link. Set copies = true to ship an interpreter instead.", c.Python, req.Address, c.Python, xy), nil
	}
	r := req.Runner
	if r == nil {
		r = &execx.Runner{}
	}
	out, err := r.Output(ctx, execx.Cmd{Argv: []string{c.Python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"}})
	if err != nil {
		return fmt.Sprintf("venv_pack: WARNING: %s exists here but does not run (%v); the archive will only work where it does.", c.Python, err), nil
	}
	if got := strings.TrimSpace(string(out)); got != xy {
		return "", fmt.Errorf("%s is Python %s here, but python_version says %s: site-packages would be lib/python%s, which that interpreter does not read; fix python_version or python (or set check_python = false if the nodes differ from this machine)", c.Python, got, xy, xy)
	}
	return "", nil
}
