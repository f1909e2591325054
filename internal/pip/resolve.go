package pip

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/sparkenv/sparkenv/internal/conda/fetch"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/execx"
	"github.com/sparkenv/sparkenv/internal/wheel"
)

// DefaultIndexURL is used when a request names neither an index nor
// find-links locations.
const DefaultIndexURL = "https://pypi.org/simple"

// Request is what to resolve and where from.
type Request struct {
	Requirements []string // PEP 508 requirements, e.g. "pandas>=2"
	// IndexURL is the simple index (--index-url); "" means none when
	// FindLinks is set, DefaultIndexURL otherwise.
	IndexURL string
	// FindLinks are directories or URLs of HTML pages listing wheels.
	FindLinks []string
	Target    Target
	// Pip is the argv prefix that runs pip (>= 22.2), e.g.
	// ["/usr/bin/python3", "-m", "pip"]; nil: FindPip.
	Pip []string
	// CacheDir is the package cache (internal/conda/fetch layout); the
	// resolved wheels are stored there. Required.
	CacheDir string
	// Env is added to the environment pip runs with (HTTPS_PROXY,
	// SSL_CERT_FILE, ...); nothing else of this process's environment is
	// passed on.
	Env []string
	Log io.Writer
	// Client downloads wheels whose hash the index did not give.
	Client *http.Client
}

// MinPipVersion is the oldest pip whose install command writes an
// installation report (--report, with --dry-run).
var MinPipVersion = [2]int{22, 2}

// report is the part of pip's JSON installation report that is read.
type report struct {
	Version string `json:"version"`
	Install []struct {
		Metadata struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"metadata"`
		DownloadInfo struct {
			URL         string `json:"url"`
			ArchiveInfo *struct {
				Hash   string            `json:"hash"`
				Hashes map[string]string `json:"hashes"`
			} `json:"archive_info"`
			DirInfo any `json:"dir_info"`
			VCSInfo any `json:"vcs_info"`
		} `json:"download_info"`
	} `json:"install"`
}

// Resolve runs pip's resolver for the target and returns the complete set
// of wheels, sorted by name, each stored in the package cache.
//
// pip runs as `pip install --dry-run --ignore-installed --report FILE
// --target TMP --only-binary=:all: --platform ... --python-version ...
// --implementation ... --abi ...`: the dry run resolves exactly as an
// install for the target would, with dependencies, and installs nothing.
// (`pip download` of pip 23.0 and 23.2, Debian 12's and pyenv's, has no
// --report, and would not say where each file came from.)
func Resolve(ctx context.Context, req Request) ([]lock.Wheel, error) {
	if len(req.Requirements) == 0 {
		return nil, nil
	}
	if req.CacheDir == "" {
		return nil, errors.New("pip: no package cache directory")
	}
	for _, r := range req.Requirements {
		if strings.TrimSpace(r) == "" || strings.HasPrefix(strings.TrimSpace(r), "-") {
			return nil, fmt.Errorf("pip requirement %q: options are not requirements", r)
		}
	}
	t, err := req.Target.normalized()
	if err != nil {
		return nil, err
	}
	plats, err := t.PlatformTags()
	if err != nil {
		return nil, err
	}
	argv := req.Pip
	if len(argv) == 0 {
		if argv, err = FindPip(ctx, t.PythonVersion); err != nil {
			return nil, err
		}
	}
	tmp, err := os.MkdirTemp("", "sparkenv-pip-*")
	if err != nil {
		return nil, fmt.Errorf("pip: %w", err)
	}
	defer os.RemoveAll(tmp)
	runner := &execx.Runner{Env: pipEnv(tmp, req.Env), Log: req.Log}
	v, err := CheckVersion(ctx, runner, argv)
	if err != nil {
		return nil, err
	}
	if v.Python != t.PythonVersion && req.Log != nil {
		fmt.Fprintf(req.Log, "warning: %s runs on Python %s, the target has Python %s: pip evaluates environment markers of requirements for %s\n",
			strings.Join(argv, " "), v.Python, t.PythonVersion, v.Python)
	}
	index := req.IndexURL
	if index == "" && len(req.FindLinks) == 0 {
		index = DefaultIndexURL
	}
	findLinks := make([]string, len(req.FindLinks))
	for i, fl := range req.FindLinks {
		if !strings.Contains(fl, "://") {
			if fl, err = filepath.Abs(fl); err != nil {
				return nil, err
			}
		}
		findLinks[i] = fl
	}
	reportPath := filepath.Join(tmp, "report.json")
	args := append(append([]string{}, argv...), "install", "--dry-run", "--ignore-installed", "--report", reportPath,
		"--target", filepath.Join(tmp, "target"), "--only-binary=:all:", "--no-input", "--progress-bar", "off", "--isolated")
	if req.CacheDir != "" {
		args = append(args, "--cache-dir", filepath.Join(req.CacheDir, "pip-http"))
	}
	for _, p := range plats {
		args = append(args, "--platform", p)
	}
	args = append(args, "--python-version", t.PythonVersion, "--implementation", t.Implementation, "--abi", t.ABI)
	if index != "" {
		args = append(args, "--index-url", index)
	} else {
		args = append(args, "--no-index")
	}
	for _, fl := range findLinks {
		args = append(args, "--find-links", fl)
	}
	args = append(args, "--")
	args = append(args, req.Requirements...)
	if err := runner.Run(ctx, execx.Cmd{Dir: tmp, Argv: args}); err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, explain(ctx, err, index, findLinks, t, plats, req.Client)
	}
	b, err := os.ReadFile(reportPath)
	if err != nil {
		return nil, fmt.Errorf("pip wrote no installation report: %w", err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("pip installation report: %w", err)
	}
	var items []fetch.Item
	var out []lock.Wheel
	for _, it := range rep.Install {
		di := it.DownloadInfo
		if di.ArchiveInfo == nil {
			return nil, fmt.Errorf("pip resolved %s %s from %s, which is not a wheel archive (a directory or VCS checkout): only wheels are supported", it.Metadata.Name, it.Metadata.Version, di.URL)
		}
		u, err := url.Parse(di.URL)
		if err != nil {
			return nil, fmt.Errorf("pip resolved %s to URL %q: %w", it.Metadata.Name, di.URL, err)
		}
		u.Fragment, u.RawFragment = "", ""
		file, err := url.PathUnescape(path.Base(u.Path))
		if err != nil {
			return nil, fmt.Errorf("pip resolved %s to URL %q: %w", it.Metadata.Name, di.URL, err)
		}
		name, version, _, _, err := wheel.ParseFilename(file)
		if err != nil {
			return nil, fmt.Errorf("pip resolved %s to %s: only wheels are supported: %w", it.Metadata.Name, di.URL, err)
		}
		if name != wheel.Normalize(it.Metadata.Name) {
			return nil, fmt.Errorf("pip resolved %s to %s, a file of another project", it.Metadata.Name, di.URL)
		}
		sha := di.ArchiveInfo.Hashes["sha256"]
		if h, ok := strings.CutPrefix(di.ArchiveInfo.Hash, "sha256="); sha == "" && ok {
			sha = h
		}
		if sha != "" && !isHex64(strings.ToLower(sha)) {
			return nil, fmt.Errorf("pip resolved %s with sha256 %q, not 64 hex digits", file, sha)
		}
		w := lock.Wheel{Name: name, Version: it.Metadata.Version, Filename: file, URL: u.String(), SHA256: strings.ToLower(sha)}
		if w.Version == "" {
			w.Version = version
		}
		if w.SHA256 == "" {
			// the index gave no hash and pip did not download the file:
			// download it once to learn it
			if w.SHA256, err = hashURL(ctx, w.URL, req.Client); err != nil {
				return nil, fmt.Errorf("pip wheel %s: %w", file, err)
			}
		}
		out = append(out, w)
		items = append(items, fetch.Item{URL: w.URL, SHA256: w.SHA256, FileName: w.Filename})
	}
	cache := &fetch.Cache{Dir: req.CacheDir}
	paths, err := cache.Fetch(ctx, items, fetch.Options{Client: req.Client})
	if err != nil {
		return nil, err
	}
	for i, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		out[i].Size = fi.Size()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	for i := 1; i < len(out); i++ {
		if out[i].Name == out[i-1].Name {
			return nil, fmt.Errorf("pip resolved %s twice (%s and %s)", out[i].Name, out[i-1].Filename, out[i].Filename)
		}
	}
	return out, nil
}

// pipEnv is the whole environment pip runs with: no user or site
// configuration, no version check, no prompts, no byte-code written, home
// in scratch space.
func pipEnv(home string, extra []string) []string {
	env := []string{
		"HOME=" + home, "PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C.UTF-8",
		"PIP_CONFIG_FILE=/dev/null", "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1",
		"PYTHONNOUSERSITE=1", "PYTHONDONTWRITEBYTECODE=1", "PYTHONIOENCODING=utf-8",
	}
	return append(env, extra...)
}

// FindPip returns the argv prefix of a pip that can resolve for another
// target: `python -m pip` of the first of python<pythonVersion> on PATH,
// python3 on PATH, /usr/bin/python3 and /usr/local/bin/python3 that is
// Python >= 3.8 with pip >= 22.2. An interpreter of the target's version
// comes first because pip evaluates environment markers
// (python_version < "3.11") for the Python it runs on, not for the target.
func FindPip(ctx context.Context, pythonVersion string) ([]string, error) {
	names := []string{"python3"}
	if pythonVersion != "" {
		names = append([]string{"python" + pythonVersion}, names...)
	}
	var cands []string
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			cands = append(cands, p)
		}
	}
	cands = append(cands, "/usr/bin/python3", "/usr/local/bin/python3")
	var errs []error
	for _, py := range cands {
		if _, err := os.Stat(py); err != nil {
			continue
		}
		argv := []string{py, "-m", "pip"}
		if _, err := CheckVersion(ctx, nil, argv); err != nil {
			errs = append(errs, err)
			continue
		}
		return argv, nil
	}
	return nil, fmt.Errorf("no pip >= %d.%d found to resolve pip requirements (install one: apt-get install python3-pip): %w",
		MinPipVersion[0], MinPipVersion[1], errors.Join(errs...))
}

var pipVersionLine = regexp.MustCompile(`^pip (\d+)\.(\d+)\S* from .* \(python (\d+)\.(\d+)\)`)

// PipVersion is what `pip --version` says.
type PipVersion struct {
	Pip    string // major.minor
	Python string // major.minor of the interpreter pip runs on
}

// CheckVersion runs `pip --version` and returns the versions, failing when
// pip or its Python is too old. A nil r runs pip with the environment
// Resolve uses.
func CheckVersion(ctx context.Context, r *execx.Runner, argv []string) (PipVersion, error) {
	if r == nil {
		r = &execx.Runner{Env: pipEnv(os.TempDir(), nil)}
	}
	out, err := r.Output(ctx, execx.Cmd{Argv: append(append([]string{}, argv...), "--version")})
	if err != nil {
		return PipVersion{}, fmt.Errorf("pip: %w", err)
	}
	line := strings.TrimSpace(string(out))
	m := pipVersionLine.FindStringSubmatch(line)
	if m == nil {
		return PipVersion{}, fmt.Errorf("%s --version: cannot read %q", strings.Join(argv, " "), line)
	}
	maj, _ := strconv.Atoi(m[1])
	min, _ := strconv.Atoi(m[2])
	pmaj, _ := strconv.Atoi(m[3])
	pmin, _ := strconv.Atoi(m[4])
	if maj < MinPipVersion[0] || maj == MinPipVersion[0] && min < MinPipVersion[1] {
		return PipVersion{}, fmt.Errorf("%s is pip %d.%d; resolving needs pip >= %d.%d (its --report)", strings.Join(argv, " "), maj, min, MinPipVersion[0], MinPipVersion[1])
	}
	if pmaj < 3 || pmaj == 3 && pmin < 8 {
		return PipVersion{}, fmt.Errorf("%s runs on Python %d.%d; resolving needs Python >= 3.8", strings.Join(argv, " "), pmaj, pmin)
	}
	return PipVersion{Pip: m[1] + "." + m[2], Python: m[3] + "." + m[4]}, nil
}

// hashURL downloads u and returns its sha256.
func hashURL(ctx context.Context, u string, client *http.Client) (string, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return "", err
	}
	var body io.ReadCloser
	switch pu.Scheme {
	case "file":
		if body, err = os.Open(filepath.FromSlash(pu.Path)); err != nil {
			return "", err
		}
	case "http", "https":
		rq, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return "", err
		}
		if client == nil {
			client = http.DefaultClient
		}
		resp, err := client.Do(rq)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return "", fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		body = resp.Body
	default:
		return "", fmt.Errorf("unsupported URL scheme %q", pu.Scheme)
	}
	defer body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, body); err != nil {
		return "", fmt.Errorf("GET %s: %w", u, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// FetchOptions tune Fetch.
type FetchOptions struct {
	Offline  bool
	Jobs     int
	Client   *http.Client
	Progress func(fetch.Event)
}

// Fetch makes the locked wheels present in the package cache at cacheDir,
// verified against their sha256, and returns their paths in order.
func Fetch(ctx context.Context, wheels []lock.Wheel, cacheDir string, opts FetchOptions) ([]string, error) {
	items := make([]fetch.Item, len(wheels))
	for i, w := range wheels {
		if _, _, _, _, err := wheel.ParseFilename(w.Filename); err != nil {
			return nil, fmt.Errorf("locked pip wheel %s: %w", w.Name, err)
		}
		if w.SHA256 == "" {
			return nil, fmt.Errorf("locked pip wheel %s (%s) has no sha256", w.Filename, w.URL)
		}
		items[i] = fetch.Item{URL: w.URL, SHA256: w.SHA256, Size: w.Size, FileName: w.Filename}
	}
	cache := &fetch.Cache{Dir: cacheDir}
	return cache.Fetch(ctx, items, fetch.Options{Offline: opts.Offline, Jobs: opts.Jobs, Client: opts.Client, Progress: opts.Progress})
}
