// Package sparkemu is a test harness that does on one machine what a Spark
// executor does with a spark-submit wiring: fetch every --archives, --files
// and --py-files artifact from its URL, unpack archives as Spark's
// Utils.unpack does into <working dir>/<alias>, put py-files on the
// Python path, and start $PYSPARK_PYTHON from the working directory with
// the environment Spark would give it. It lets tests prove that a built
// environment runs where Spark puts it, without a cluster.
//
// What it emulates, from Spark's and Hadoop's sources:
//
//   - Unpacking is chosen by the lower-cased suffix of the fetched file's
//     name: .tar.gz and .tgz go through the system tar (Hadoop's
//     FileUtil.unTar shells out), so modes and symbolic links survive; .zip
//     and .jar through Hadoop's Java unZip, which writes a symbolic link
//     entry as a plain file holding the link's target and keeps exec bits
//     only since HADOOP-18145 (Options.OldHadoopZip drops them); .tar
//     through a Java untar that keeps links but not permissions (every file
//     0644); anything else is copied as is.
//   - Every fetched file is made executable (Utils.fetchFile), which is
//     what lets --files env.pex run as ./env.pex.
//   - An archive without #alias lands in a directory named after the file.
//   - The interpreter is spark.executorEnv.PYSPARK_PYTHON, else
//     spark.pyspark.python, else python3; a relative path is resolved from
//     the working directory, a bare name on PATH. spark.executorEnv.* are
//     set in its environment; py-files are put first on PYTHONPATH.
//
// With a local master the working directory stands for the directory of
// spark-submit with the archive unpacked there, as the wiring's note asks.
//
// It fetches http(s), file:// and local paths only (no S3), and must never
// be used outside tests: it runs whatever the artifacts contain.
package sparkemu

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sparkenv/sparkenv/runtime/sparksubmit"
)

// Options tune an Executor.
type Options struct {
	// OldHadoopZip emulates Hadoop before HADOOP-18145, whose unZip drops
	// the executable bits.
	OldHadoopZip bool
	// Client fetches http(s) URLs; nil means http.DefaultClient.
	Client *http.Client
	// Env is the base environment of the worker (PATH, HOME...); nil
	// means PATH, HOME and LANG of this process.
	Env []string
}

// Executor is one emulated executor with its artifacts in place.
type Executor struct {
	// Dir is the executor's working directory.
	Dir string
	// Python is PYSPARK_PYTHON as the worker is started with it.
	Python string
	// Env is the worker's environment.
	Env []string
	// Unpacked lists the directories or files each artifact became,
	// relative to Dir, in the order fetched.
	Unpacked []string
}

// NewExecutor prepares an executor in a fresh directory of t, failing the
// test on error.
func NewExecutor(t testing.TB, w *sparksubmit.Wiring, opts ...Options) *Executor {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	e, err := Start(context.Background(), filepath.Join(t.TempDir(), "executor"), w, o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Start prepares an executor whose working directory is dir (created).
func Start(ctx context.Context, dir string, w *sparksubmit.Wiring, o Options) (*Executor, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	d := Deps(w)
	e := &Executor{Dir: dir}
	fetchDir := filepath.Join(dir, ".fetch")
	if err := os.Mkdir(fetchDir, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(fetchDir)
	for _, a := range d.Archives {
		uri, alias := SplitAlias(a)
		name, src, err := fetch(ctx, o, uri, fetchDir)
		if err != nil {
			return nil, err
		}
		if alias == "" {
			alias = name
		}
		if err := checkName(alias); err != nil {
			return nil, fmt.Errorf("archive %s: %w", a, err)
		}
		if err := Unpack(ctx, src, name, filepath.Join(dir, alias), o); err != nil {
			return nil, fmt.Errorf("archive %s: %w", a, err)
		}
		e.Unpacked = append(e.Unpacked, alias)
	}
	var pyPath []string
	for i, list := range [][]string{d.Files, d.PyFiles} {
		isPy := i == 1
		for _, f := range list {
			uri, alias := SplitAlias(f)
			name, src, err := fetch(ctx, o, uri, fetchDir)
			if err != nil {
				return nil, err
			}
			if alias == "" {
				alias = name
			}
			if err := checkName(alias); err != nil {
				return nil, fmt.Errorf("file %s: %w", f, err)
			}
			dst := filepath.Join(dir, alias)
			if err := os.Rename(src, dst); err != nil {
				return nil, err
			}
			if err := os.Chmod(dst, 0o755); err != nil {
				return nil, err
			}
			e.Unpacked = append(e.Unpacked, alias)
			if isPy {
				pyPath = append(pyPath, dst)
			}
		}
	}
	e.Python = d.Python
	env := o.Env
	if env == nil {
		for _, k := range []string{"PATH", "HOME", "LANG"} {
			if v, ok := os.LookupEnv(k); ok {
				env = append(env, k+"="+v)
			}
		}
	}
	env = append([]string{}, env...)
	for _, k := range sortedKeys(d.ExecutorEnv) {
		env = append(env, k+"="+d.ExecutorEnv[k])
	}
	if len(pyPath) > 0 {
		env = append(env, "PYTHONPATH="+strings.Join(pyPath, ":"))
	}
	e.Env = env
	return e, nil
}

// Run starts the worker's interpreter with args from the working directory
// and returns its standard output; the error carries standard error.
func (e *Executor) Run(args ...string) (string, error) {
	return e.RunContext(context.Background(), args...)
}

// RunContext is Run with a context.
func (e *Executor) RunContext(ctx context.Context, args ...string) (string, error) {
	prog := e.Python
	if strings.Contains(prog, "/") && !filepath.IsAbs(prog) {
		prog = filepath.Join(e.Dir, prog)
	} else if !strings.Contains(prog, "/") {
		p, err := lookPath(prog, e.Env)
		if err != nil {
			return "", err
		}
		prog = p
	}
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = e.Dir
	cmd.Env = e.Env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("executor python %s: %w\n%s", e.Python, err, stderr.String())
	}
	return stdout.String(), nil
}

// lookPath finds a bare program name on the worker's PATH.
func lookPath(name string, env []string) (string, error) {
	pathVar := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	for _, d := range filepath.SplitList(pathVar) {
		p := filepath.Join(d, name)
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("executor python %s: not found on the worker's PATH", name)
}

// Dependencies are what a wiring ships to executors.
type Dependencies struct {
	Archives, Files, PyFiles []string // URIs, with #alias where given
	Python                   string
	ExecutorEnv              map[string]string
}

// Deps reads the wiring the way spark-submit merges flags and
// configuration.
func Deps(w *sparksubmit.Wiring) Dependencies {
	d := Dependencies{ExecutorEnv: map[string]string{}}
	for i := 0; i+1 < len(w.Flags); i += 2 {
		v := SplitList(w.Flags[i+1])
		switch w.Flags[i] {
		case "--archives":
			d.Archives = append(d.Archives, v...)
		case "--files":
			d.Files = append(d.Files, v...)
		case "--py-files":
			d.PyFiles = append(d.PyFiles, v...)
		}
	}
	for _, k := range sortedKeys(w.Conf) {
		v := w.Conf[k]
		switch k {
		case "spark.archives", "spark.yarn.dist.archives":
			d.Archives = append(d.Archives, SplitList(v)...)
		case "spark.files", "spark.yarn.dist.files":
			d.Files = append(d.Files, SplitList(v)...)
		case "spark.submit.pyFiles":
			d.PyFiles = append(d.PyFiles, SplitList(v)...)
		}
		if name, ok := strings.CutPrefix(k, "spark.executorEnv."); ok && name != "" {
			d.ExecutorEnv[name] = v
		}
	}
	d.Python = "python3"
	if p := w.Conf["spark.pyspark.python"]; p != "" {
		d.Python = p
	}
	if p := d.ExecutorEnv["PYSPARK_PYTHON"]; p != "" {
		d.Python = p
	}
	return d
}

// SplitList splits a comma-separated list of URIs, dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// SplitAlias splits "uri#alias" at its last '#'.
func SplitAlias(s string) (uri, alias string) {
	i := strings.LastIndexByte(s, '#')
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i+1:]
}

func checkName(n string) error {
	if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\x00") {
		return fmt.Errorf("%q is not a plain file name", n)
	}
	return nil
}

// fetch copies uri into dir under the last element of its path and
// returns that name and the file.
func fetch(ctx context.Context, o Options, uri, dir string) (string, string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", "", fmt.Errorf("fetch %s: %w", uri, err)
	}
	var r io.ReadCloser
	switch u.Scheme {
	case "", "file":
		p := uri
		if u.Scheme == "file" {
			p = u.Path
		}
		f, err := os.Open(p)
		if err != nil {
			return "", "", fmt.Errorf("fetch %s: %w", uri, err)
		}
		r = f
	case "http", "https":
		c := o.Client
		if c == nil {
			c = &http.Client{Timeout: 5 * time.Minute}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
		if err != nil {
			return "", "", err
		}
		resp, err := c.Do(req)
		if err != nil {
			return "", "", fmt.Errorf("fetch %s: %w", uri, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return "", "", fmt.Errorf("fetch %s: %s", uri, resp.Status)
		}
		r = resp.Body
	default:
		return "", "", fmt.Errorf("fetch %s: scheme %q is not emulated (http, https, file and local paths are)", uri, u.Scheme)
	}
	defer r.Close()
	name := path.Base(u.Path)
	if u.Scheme == "" {
		name = filepath.Base(uri)
	}
	if err := checkName(name); err != nil {
		return "", "", fmt.Errorf("fetch %s: %w", uri, err)
	}
	dst := filepath.Join(dir, name)
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", "", fmt.Errorf("fetch %s: %w", uri, err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return "", "", fmt.Errorf("fetch %s: %w", uri, err)
	}
	if err := f.Close(); err != nil {
		return "", "", err
	}
	// Utils.fetchFile makes every fetched file executable.
	return name, dst, os.Chmod(dst, 0o755)
}

// Unpack unpacks src, whose name decides how, into dest as Utils.unpack
// does.
func Unpack(ctx context.Context, src, name, dest string, o Options) error {
	l := strings.ToLower(name)
	switch {
	case strings.HasSuffix(l, ".jar"), strings.HasSuffix(l, ".zip"):
		return unzip(src, dest, !o.OldHadoopZip)
	case strings.HasSuffix(l, ".tar.gz"), strings.HasSuffix(l, ".tgz"):
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return err
		}
		out, err := exec.CommandContext(ctx, "tar", "-xzf", src, "-C", dest).CombinedOutput()
		if err != nil {
			return fmt.Errorf("tar -xzf %s: %w\n%s", name, err, out)
		}
		return nil
	case strings.HasSuffix(l, ".tar"):
		return untarJava(src, dest)
	}
	// Anything else is copied as is: the file itself becomes dest.
	return os.Rename(src, dest)
}

// inside joins a member name to dest, refusing names that leave it.
func inside(dest, name string) (string, error) {
	p := filepath.Join(dest, filepath.FromSlash(name))
	if p != dest && !strings.HasPrefix(p, dest+string(filepath.Separator)) {
		return "", fmt.Errorf("member %q leaves the destination", name)
	}
	return p, nil
}

func unzip(src, dest string, keepModes bool) error {
	zr, err := zip.OpenReader(src)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, f := range zr.File {
		p, err := inside(dest, f.Name)
		if err != nil {
			return err
		}
		if strings.HasSuffix(f.Name, "/") || f.Mode().IsDir() {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		// A link entry's content is its target: Java writes it as a file.
		mode := os.FileMode(0o644)
		if keepModes && f.Mode()&0o111 != 0 {
			mode = 0o755
		}
		r, err := f.Open()
		if err != nil {
			return err
		}
		err = writeFile(p, r, mode)
		r.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func writeFile(p string, r io.Reader, mode os.FileMode) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Chmod(p, mode)
}

// untarJava extracts a plain tar keeping links but no permissions.
func untarJava(src, dest string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p, err := inside(dest, h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeSymlink:
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				err = os.Symlink(h.Linkname, p)
			}
		case tar.TypeReg:
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				err = writeFile(p, tr, 0o644)
			}
		}
		if err != nil {
			return err
		}
	}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
