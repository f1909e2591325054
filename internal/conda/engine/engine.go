// Package engine is the conda engine's front: solve an environment from
// channels into a lock entry, and lay out a locked environment (fetch,
// verify, extract, install) for a target prefix. It knows nothing of HCL or
// of the build graph; the CLI and the builders call it.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/internal/conda/channel"
	"github.com/sparkenv/sparkenv/internal/conda/fetch"
	"github.com/sparkenv/sparkenv/internal/conda/install"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/conda/matchspec"
	"github.com/sparkenv/sparkenv/internal/conda/pkg"
	"github.com/sparkenv/sparkenv/internal/conda/repodata"
	"github.com/sparkenv/sparkenv/internal/conda/solve"
	"github.com/sparkenv/sparkenv/internal/pip"
	"github.com/sparkenv/sparkenv/internal/wheel"
)

// Engine holds what solving and installing share.
type Engine struct {
	// PkgsDir is the package cache shared by every environment and project;
	// repodata is cached below it too.
	PkgsDir string
	Offline bool
	Jobs    int
	Client  *http.Client
	S3      fetch.S3Getter
	// ChannelAlias turns channel names into URLs (default conda.anaconda.org).
	ChannelAlias string
	Log          io.Writer
	// Progress receives download events; may be nil.
	Progress func(fetch.Event)
}

// SolveRequest is one environment to solve.
type SolveRequest struct {
	Platform        string
	Channels        []string
	Specs           []string
	VirtualPackages map[string]string // e.g. __glibc: "2.31"
	ChannelPriority string            // "strict" (default) or "flexible"
	// Previous is the environment's current lock; its pins are kept where
	// they still satisfy the specs, except for the names in Update (or all,
	// with UpdateAll).
	Previous  *lock.Environment
	Update    []string
	UpdateAll bool
	// BaseDir resolves relative file channels and find-links folders.
	BaseDir string
	// Pip requirements, resolved by the real pip for the solved
	// environment's platform and python after the conda solve.
	Pip          []string
	PipIndex     string
	PipFindLinks []string
	// PipCommand runs pip (e.g. ["python3", "-m", "pip"]); empty finds one.
	PipCommand []string
	// Environ passes proxy and certificate settings on to pip.
	Environ []string
}

func (e *Engine) fetcher() *channel.Fetcher {
	return &channel.Fetcher{Client: e.Client, CacheDir: filepath.Join(e.PkgsDir, "repodata"), Offline: e.Offline, S3: e.S3}
}

func (e *Engine) cache() *fetch.Cache {
	return &fetch.Cache{Dir: e.PkgsDir, Extract: func(ctx context.Context, archive, dest string) error {
		return pkg.Extract(ctx, archive, dest, pkg.ExtractOptions{})
	}}
}

// ResolveChannels parses channel names and URLs; relative paths are
// resolved against baseDir.
func (e *Engine) ResolveChannels(names []string, baseDir string) ([]channel.Channel, error) {
	var out []channel.Channel
	for _, n := range names {
		if baseDir != "" && (strings.HasPrefix(n, "./") || strings.HasPrefix(n, "../")) {
			n = filepath.Join(baseDir, n)
		}
		ch, err := channel.ParseChannel(n, e.ChannelAlias)
		if err != nil {
			return nil, err
		}
		out = append(out, ch)
	}
	return out, nil
}

// LoadChannels reads the platform and noarch indexes of every channel, in
// priority order.
func (e *Engine) LoadChannels(ctx context.Context, chans []channel.Channel, platform string) ([]solve.ChannelRecords, error) {
	f := e.fetcher()
	var out []solve.ChannelRecords
	for _, ch := range chans {
		cr := solve.ChannelRecords{Name: ch.Name}
		subdirs := []string{platform}
		if platform != "noarch" {
			subdirs = append(subdirs, "noarch")
		}
		for _, sd := range subdirs {
			var rd *repodata.Repodata
			var err error
			if sd == "noarch" && platform != "noarch" {
				// A channel with packages for one platform only may lack
				// noarch/ in the wild, though CEP 36 asks for it.
				rd, err = f.RepodataOptional(ctx, ch, sd)
			} else {
				rd, err = f.Repodata(ctx, ch, sd)
			}
			if err != nil {
				return nil, err
			}
			if rd != nil {
				cr.Records = append(cr.Records, rd.Records()...)
			}
		}
		out = append(out, cr)
	}
	return out, nil
}

// VirtualPackages turns the configuration's map into records, with the
// defaults of the platform: __unix on Unix platforms, __linux and __glibc
// (2.17, the oldest any current conda-forge package needs) on Linux unless
// given, and __archspec from the platform.
func VirtualPackages(platform string, given map[string]string) []repodata.Record {
	vp := map[string]string{}
	switch {
	case strings.HasPrefix(platform, "linux-"):
		vp["__unix"] = "0"
		vp["__linux"] = "0"
		vp["__glibc"] = "2.17"
	case strings.HasPrefix(platform, "osx-"):
		vp["__unix"] = "0"
		vp["__osx"] = "11.0"
	case strings.HasPrefix(platform, "win-"):
		vp["__win"] = "0"
	}
	if arch := archspec(platform); arch != "" {
		vp["__archspec"] = "1"
	}
	for k, v := range given {
		vp[k] = v
	}
	var out []repodata.Record
	for _, name := range sortedKeys(vp) {
		version, build, _ := strings.Cut(vp[name], "=")
		if build == "" {
			build = "0"
		}
		if name == "__archspec" && build == "0" {
			build = archspec(platform)
		}
		out = append(out, repodata.Record{Name: name, Version: version, Build: build, Depends: []string{}})
	}
	return out
}

func archspec(platform string) string {
	switch platform {
	case "linux-64", "osx-64", "win-64":
		return "x86_64"
	case "linux-aarch64":
		return "aarch64"
	case "osx-arm64":
		return "arm64"
	case "linux-ppc64le":
		return "ppc64le"
	case "linux-s390x":
		return "s390x"
	}
	return ""
}

// Solve solves one environment into a lock entry (InputHash left empty:
// the caller knows what the inputs are).
func (e *Engine) Solve(ctx context.Context, req SolveRequest) (*lock.Environment, error) {
	chans, err := e.ResolveChannels(req.Channels, req.BaseDir)
	if err != nil {
		return nil, err
	}
	recs, err := e.LoadChannels(ctx, chans, req.Platform)
	if err != nil {
		return nil, err
	}
	var specs []matchspec.MatchSpec
	for _, s := range req.Specs {
		ms, err := matchspec.Parse(s)
		if err != nil {
			return nil, err
		}
		specs = append(specs, ms)
	}
	sr := solve.Request{Channels: recs, Specs: specs, Virtual: VirtualPackages(req.Platform, req.VirtualPackages)}
	if req.ChannelPriority == "flexible" {
		sr.ChannelPriority = solve.Flexible
	}
	if req.Previous != nil && !req.UpdateAll {
		sr.Locked = req.Previous.Packages
		sr.Update = req.Update
	}
	sol, err := solve.Solve(ctx, sr)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, c := range chans {
		names = append(names, c.Name)
	}
	env := &lock.Environment{
		Platform:        req.Platform,
		Channels:        names,
		Specs:           append([]string{}, req.Specs...),
		VirtualPackages: req.VirtualPackages,
		Packages:        sol.Records,
	}
	for _, r := range env.Packages {
		if r.URL == "" || (r.SHA256 == "" && r.MD5 == "") {
			return nil, fmt.Errorf("package %s from %s has no URL or checksum in the channel index", r.DistName(), r.Channel)
		}
	}
	if len(req.Pip) > 0 {
		if env.Pip, err = e.resolvePip(ctx, env, req); err != nil {
			return nil, err
		}
	}
	return env, nil
}

// resolvePip resolves pip requirements with the real pip for the target
// the conda solve produced (platform, glibc, python and ABI), never for the
// build machine.
func (e *Engine) resolvePip(ctx context.Context, env *lock.Environment, req SolveRequest) ([]lock.Wheel, error) {
	t, err := pip.TargetFor(env)
	if err != nil {
		return nil, fmt.Errorf("pip packages: %w", err)
	}
	var links []string
	for _, l := range req.PipFindLinks {
		if !strings.Contains(l, "://") && !filepath.IsAbs(l) && req.BaseDir != "" {
			l = filepath.Join(req.BaseDir, l)
		}
		links = append(links, l)
	}
	var passEnv []string
	for _, kv := range req.Environ {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "PIP_CERT":
			passEnv = append(passEnv, kv)
		}
	}
	return pip.Resolve(ctx, pip.Request{
		Requirements: req.Pip, IndexURL: req.PipIndex, FindLinks: links, Target: t,
		Pip: req.PipCommand, CacheDir: e.PkgsDir, Env: passEnv, Log: e.Log, Client: e.Client,
	})
}

// InstallOptions tune Install.
type InstallOptions struct {
	// TargetPrefix is where the environment will live (default: the
	// staging dir itself).
	TargetPrefix   string
	AllowHardlinks bool
	History        string
}

// Fetch makes every package of env present and verified in the package
// cache and returns the archive paths in env order.
func (e *Engine) Fetch(ctx context.Context, env *lock.Environment) ([]string, error) {
	items := make([]fetch.Item, len(env.Packages))
	for i, r := range env.Packages {
		items[i] = fetch.Item{URL: r.URL, SHA256: r.SHA256, MD5: r.MD5, Size: r.Size, FileName: r.FileName}
	}
	return e.cache().Fetch(ctx, items, fetch.Options{Jobs: e.Jobs, Offline: e.Offline, Client: e.Client, S3: e.S3, Progress: e.Progress})
}

// Install lays out env in stagingDir (which must not exist or be empty),
// patched for opts.TargetPrefix. Nothing is left in stagingDir on error.
func (e *Engine) Install(ctx context.Context, env *lock.Environment, stagingDir string, opts InstallOptions) (*install.Report, error) {
	pkgs, err := e.extracted(ctx, env)
	if err != nil {
		return nil, err
	}
	target := opts.TargetPrefix
	if target == "" {
		target, err = filepath.Abs(stagingDir)
		if err != nil {
			return nil, err
		}
	}
	rep, err := install.Install(ctx, stagingDir, pkgs, install.Options{
		TargetPrefix: target, Jobs: e.Jobs, AllowHardlinks: opts.AllowHardlinks, History: opts.History, Log: e.Log,
	})
	if err != nil {
		return nil, err
	}
	if len(env.Pip) > 0 {
		if err := e.installWheels(ctx, env, stagingDir, target); err != nil {
			os.RemoveAll(stagingDir)
			return nil, err
		}
	}
	return rep, nil
}

// Layout plans env for opts.TargetPrefix without copying the packages'
// files (see install.Layout). What has to be written goes below workDir,
// which must be empty or absent: conda's side in workDir/conda, the pip
// wheels (installed whole, they are small) in workDir/pip. The tree has
// the wheels' files over the conda packages', as an install has them.
func (e *Engine) Layout(ctx context.Context, env *lock.Environment, workDir string, opts InstallOptions) (*install.Tree, error) {
	if opts.TargetPrefix == "" {
		return nil, fmt.Errorf("layout: no target prefix")
	}
	pkgs, err := e.extracted(ctx, env)
	if err != nil {
		return nil, err
	}
	tree, err := install.Layout(ctx, filepath.Join(workDir, "conda"), pkgs, install.Options{
		TargetPrefix: opts.TargetPrefix, Jobs: e.Jobs, AllowHardlinks: opts.AllowHardlinks, History: opts.History, Log: e.Log,
		LayoutCache: filepath.Join(e.PkgsDir, "layout"),
	})
	if err != nil {
		return nil, err
	}
	if len(env.Pip) == 0 {
		return tree, nil
	}
	overlay := filepath.Join(workDir, "pip")
	if err := e.installWheels(ctx, env, overlay, opts.TargetPrefix); err != nil {
		return nil, err
	}
	if err := overlayTree(tree, overlay); err != nil {
		return nil, fmt.Errorf("layout: %w", err)
	}
	return tree, nil
}

// overlayTree puts the files below dir over tree's entries: a path in both
// becomes dir's.
func overlayTree(tree *install.Tree, dir string) error {
	var over []install.Entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		e := install.Entry{Path: filepath.ToSlash(rel), Package: -1}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			e.Type, e.Mode = install.EntryDir, 0o755
		case fi.Mode()&fs.ModeSymlink != 0:
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
			e.Type, e.Mode = install.EntrySymlink, 0o777
		case fi.Mode().IsRegular():
			sum, _, err := artifact.HashFile(p)
			if err != nil {
				return err
			}
			e.Type, e.Mode, e.Source, e.SHA256 = install.EntryFile, fi.Mode().Perm(), p, sum
		default:
			return fmt.Errorf("%s: not a file, directory or symlink", p)
		}
		over = append(over, e)
		return nil
	})
	if err != nil {
		return err
	}
	tree.Add(over)
	return nil
}

// extracted fetches env's packages and returns them extracted, in
// install order.
func (e *Engine) extracted(ctx context.Context, env *lock.Environment) ([]install.Package, error) {
	paths, err := e.Fetch(ctx, env)
	if err != nil {
		return nil, err
	}
	c := e.cache()
	requested := map[string]string{}
	for _, s := range env.Specs {
		if ms, err := matchspec.Parse(s); err == nil {
			requested[ms.Name] = s
		}
	}
	pkgs := make([]install.Package, len(env.Packages))
	for i, r := range env.Packages {
		sum := r.SHA256
		if sum == "" {
			// Cached under its verified sha256 by Fetch, whatever the lock had.
			if s, _, err := artifact.HashFile(paths[i]); err == nil {
				sum = s
			}
		}
		dir, err := c.Extracted(ctx, paths[i], sum)
		if err != nil {
			return nil, fmt.Errorf("extract %s: %w", r.DistName(), err)
		}
		pkgs[i] = install.Package{Record: r, Dir: dir, RequestedSpec: requested[r.Name]}
	}
	return pkgs, nil
}

// installWheels installs the locked pip wheels into a laid-out conda
// environment, as pip would into that python's site-packages, with scripts
// pointing at the python of the target prefix.
func (e *Engine) installWheels(ctx context.Context, env *lock.Environment, stage, target string) error {
	stage, err := filepath.Abs(stage)
	if err != nil {
		return err
	}
	var py *repodata.Record
	for i := range env.Packages {
		if env.Packages[i].Name == "python" {
			py = &env.Packages[i]
		}
	}
	if py == nil {
		return fmt.Errorf("the environment has pip packages but no python package to install them for")
	}
	parts := strings.SplitN(py.Version, ".", 3)
	if len(parts) < 2 {
		return fmt.Errorf("python %s: cannot tell its major.minor version", py.Version)
	}
	xy := parts[0] + "." + parts[1]
	site := filepath.Join("lib", "python"+xy, "site-packages")
	if py.PythonSitePackagesPath != "" {
		site = filepath.FromSlash(py.PythonSitePackagesPath)
	}
	paths, err := pip.Fetch(ctx, env.Pip, e.PkgsDir, pip.FetchOptions{Offline: e.Offline, Jobs: e.Jobs, Client: e.Client})
	if err != nil {
		return err
	}
	for i, w := range env.Pip {
		_, err := wheel.Install(ctx, paths[i], wheel.Scheme{
			Purelib: filepath.Join(stage, site), Platlib: filepath.Join(stage, site),
			Scripts: filepath.Join(stage, "bin"), Data: stage,
			Headers:    filepath.Join(stage, "include", "python"+xy, w.Name),
			Python:     path.Join(target, "bin", "python"+xy),
			TargetRoot: target, StagingRoot: stage,
		}, wheel.Options{Installer: "sparkenv", Requested: true, Log: e.Log})
		if err != nil {
			return fmt.Errorf("install %s: %w", w.Filename, err)
		}
	}
	return nil
}

// ExplainUnsatisfiable renders a solver failure for people.
func ExplainUnsatisfiable(err error) (string, bool) {
	var ue *solve.UnsatisfiableError
	if !errors.As(err, &ue) {
		return "", false
	}
	return ue.Error(), true
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
