package sparksubmit_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/pex"
	"github.com/sparkenv/sparkenv/builders/pex/pextest"
	"github.com/sparkenv/sparkenv/builders/pyfiles"
	"github.com/sparkenv/sparkenv/builders/venvpack"
	"github.com/sparkenv/sparkenv/internal/execx"
	"github.com/sparkenv/sparkenv/internal/testutil"
	"github.com/sparkenv/sparkenv/runtime/sparksubmit"
	"github.com/sparkenv/sparkenv/runtime/sparksubmit/sparkemu"
)

// nodeBundles are the bundles built for one node interpreter, each in its
// own directory below root (served as /pex/, /venv/, /pyfiles/).
type nodeBundles struct {
	py, xy string
	root   string
	pex    string // job.pex
	venv   string // job.tar.gz
	zip    string // helper.zip
}

// buildWith runs one real builder into root/sub and returns the path of the
// file its result names as "main".
func buildWith(t *testing.T, b builders.Builder, root, sub string, cfg any, baseDir string, inputs ...builders.Input) string {
	t.Helper()
	out := filepath.Join(root, sub)
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	req := &builders.Request{
		Address: "target." + b.Kind() + ".job", Name: "job", Config: cfg, BaseDir: baseDir,
		Inputs: inputs, OutDir: out, TempDir: t.TempDir(), Log: &log,
		Runner: &execx.Runner{Env: os.Environ()}, PackageCacheDir: t.TempDir(), Jobs: 2,
	}
	res, err := b.Build(context.Background(), req)
	if err != nil {
		t.Fatalf("%s build: %v\n%s", b.Kind(), err, log.String())
	}
	main := res.Metadata["main"]
	if main == "" {
		t.Fatalf("%s build names no main file: %v", b.Kind(), res.Metadata)
	}
	return filepath.Join(out, main)
}

// buildNodeBundles builds a PEX, a venv_pack archive and a py-files zip
// from the same two wheels (beta imports alpha) for the interpreter py.
func buildNodeBundles(t *testing.T, py, xy string) *nodeBundles {
	t.Helper()
	work := t.TempDir()
	wheels := pextest.Wheels(t, filepath.Join(work, "wheels"), pextest.Pair()...)
	env := pextest.EnvInput(t, "job", wheels)
	nb := &nodeBundles{py: py, xy: xy, root: filepath.Join(work, "published")}
	nb.pex = buildWith(t, pex.New(), nb.root, "pex",
		&pex.Config{Environment: env.Address, PythonVersion: xy, Output: "job.pex"}, work, env)
	nb.venv = buildWith(t, venvpack.New(), nb.root, "venv",
		&venvpack.Config{Environment: env.Address, Python: py, PythonVersion: xy}, work, env)

	// The py-files code needs the PEX's packages: it only runs when both
	// are in place on the executor.
	src := filepath.Join(work, "src", "helper")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	code := "import b\n\ndef h():\n    return 'helper:' + b.g()\n"
	if err := os.WriteFile(filepath.Join(src, "__init__.py"), []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	nb.zip = buildWith(t, pyfiles.New(), nb.root, "pyfiles",
		&pyfiles.Config{Source: "src", Output: "helper.zip"}, work)
	return nb
}

// publish serves root over http on the loopback interface and describes a
// file below it as a publisher's receipt would: an http URL under the
// "https" key (Args takes the URL as given, it never rewrites the scheme),
// or only a file:// URL.
func publish(t *testing.T, root string) func(file, scheme string) sparksubmit.Artifact {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(root)))
	t.Cleanup(srv.Close)
	return func(file, scheme string) sparksubmit.Artifact {
		rel, err := filepath.Rel(root, file)
		if err != nil {
			t.Fatal(err)
		}
		switch scheme {
		case "http":
			return sparksubmit.Artifact{Path: file, URLs: map[string]string{"https": srv.URL + "/" + filepath.ToSlash(rel)}}
		case "file":
			return sparksubmit.Artifact{URLs: map[string]string{"file": "file://" + filepath.ToSlash(file)}}
		}
		t.Fatalf("no scheme %q", scheme)
		return sparksubmit.Artifact{}
	}
}

// wire computes the wiring and checks the cluster-mode rules the emulator
// cannot see: the driver in the cluster gets the same relative
// interpreter, and no path of the submitting machine.
func wire(t *testing.T, in sparksubmit.Input, wantPython string) *sparksubmit.Wiring {
	t.Helper()
	w, err := sparksubmit.Args(in)
	if err != nil {
		t.Fatal(err)
	}
	if in.Kind == sparksubmit.PyFiles {
		return w
	}
	driverKey := map[string]string{
		sparksubmit.YARN:       "spark.yarn.appMasterEnv.PYSPARK_PYTHON",
		sparksubmit.Kubernetes: "spark.kubernetes.driverEnv.PYSPARK_PYTHON",
	}[in.Master]
	for _, k := range []string{"spark.executorEnv.PYSPARK_PYTHON", "spark.pyspark.python", driverKey} {
		if got := w.Conf[k]; got != wantPython {
			t.Errorf("%s = %q, want %q (wiring %+v)", k, got, wantPython, w)
		}
	}
	if v, ok := w.Conf["spark.pyspark.driver.python"]; ok {
		t.Errorf("cluster mode sets spark.pyspark.driver.python = %q", v)
	}
	if v, ok := w.Env["PYSPARK_DRIVER_PYTHON"]; ok {
		t.Errorf("cluster mode sets PYSPARK_DRIVER_PYTHON = %q", v)
	}
	return w
}

// combine is what one spark-submit with both sets of flags ships.
func combine(ws ...*sparksubmit.Wiring) *sparksubmit.Wiring {
	out := &sparksubmit.Wiring{Master: ws[0].Master, DeployMode: ws[0].DeployMode, Conf: map[string]string{}, Env: map[string]string{}}
	for _, w := range ws {
		out.Flags = append(out.Flags, w.Flags...)
		for k, v := range w.Conf {
			out.Conf[k] = v
		}
	}
	return out
}

// runOn runs the executor's PYSPARK_PYTHON with args and compares stdout.
func runOn(t *testing.T, e *sparkemu.Executor, want string, args ...string) {
	t.Helper()
	out, err := e.Run(args...)
	if err != nil {
		t.Fatalf("%s %q: %v", e.Python, args, err)
	}
	if out != want {
		t.Fatalf("%s %q printed %q, want %q", e.Python, args, out, want)
	}
}

// nodeEnv is an executor's environment on a node whose python3 is py: the
// PEX's "#!/usr/bin/env python3" finds it on PATH. HOME is a fresh
// directory, so every executor unpacks the PEX itself.
func nodeEnv(t *testing.T, py string) sparkemu.Options {
	return sparkemu.Options{Env: []string{"PATH=" + filepath.Dir(py) + ":/usr/bin:/bin", "HOME=" + t.TempDir(), "LANG=C.UTF-8"}}
}

var clusterModes = []mm{{sparksubmit.YARN, sparksubmit.Cluster}, {sparksubmit.Kubernetes, sparksubmit.Cluster}}

// TestBundlesOnEmulatedExecutors builds a PEX, a venv_pack archive and a
// py-files zip with the real builders for several node interpreters,
// publishes them, wires them for YARN and Kubernetes cluster mode and runs
// them where a Spark executor would.
func TestBundlesOnEmulatedExecutors(t *testing.T) {
	for _, xy := range []string{"3.10", "3.11", "3.12"} {
		t.Run("python"+xy, func(t *testing.T) {
			t.Parallel()
			py := testutil.Python(t, xy)
			nb := buildNodeBundles(t, py, xy)
			art := publish(t, nb.root)
			ver := "print('%d.%d' % sys.version_info[:2]); "
			for _, c := range clusterModes {
				for _, scheme := range []string{"http", "file"} {
					t.Run(c.master+"-"+scheme, func(t *testing.T) {
						in := func(kind, file string) sparksubmit.Input {
							return sparksubmit.Input{Kind: kind, Artifacts: []sparksubmit.Artifact{art(file, scheme)},
								Master: c.master, DeployMode: c.mode, PythonVersion: xy}
						}
						pexW := wire(t, in(sparksubmit.PEX, nb.pex), "./job.pex")
						venvW := wire(t, in(sparksubmit.VenvPack, nb.venv), "./environment/bin/python")
						zipW := wire(t, in(sparksubmit.PyFiles, nb.zip), "")
						flags := strings.Join(slices.Concat(pexW.Flags, venvW.Flags, zipW.Flags), " ")
						want := map[string]string{"http": "http://127.0.0.1:", "file": "file://"}[scheme]
						if strings.Count(flags, want) != 3 {
							t.Fatalf("flags do not ship the three bundles by %s URLs: %s", scheme, flags)
						}

						t.Run("pex", func(t *testing.T) {
							e := sparkemu.NewExecutor(t, pexW, nodeEnv(t, py))
							runOn(t, e, "b-main beta-g:alpha-f []\n", "-m", "b")
							runOn(t, e, xy+"\nalpha-f\n", "-c", "import sys, a; "+ver+"print(a.f())")
							// How Spark starts its Python workers.
							runOn(t, e, "daemon beta-g:alpha-f True\n", "-m", "pyspark.daemon")
						})
						t.Run("venv_pack", func(t *testing.T) {
							e := sparkemu.NewExecutor(t, venvW, nodeEnv(t, py))
							prefix := filepath.Join(e.Dir, "environment")
							runOn(t, e, xy+"\n"+prefix+"\nbeta-g:alpha-f\n",
								"-c", "import sys, b; "+ver+"print(sys.prefix); print(b.g())")
							runOn(t, e, "b-main beta-g:alpha-f []\n", "-m", "b")
						})
						t.Run("pex+pyfiles", func(t *testing.T) {
							e := sparkemu.NewExecutor(t, combine(pexW, zipW), nodeEnv(t, py))
							runOn(t, e, "helper:beta-g:alpha-f\n"+filepath.Join(e.Dir, "helper.zip", "helper", "__init__.py")+"\n",
								"-c", "import helper; print(helper.h()); print(helper.__file__)")
						})
					})
				}
			}

			t.Run("venv_pack-relocation", func(t *testing.T) {
				w := wire(t, sparksubmit.Input{Kind: sparksubmit.VenvPack, Artifacts: []sparksubmit.Artifact{art(nb.venv, "http")},
					Master: sparksubmit.YARN, DeployMode: sparksubmit.Cluster, PythonVersion: xy}, "./environment/bin/python")
				base := t.TempDir()
				var execs []*sparkemu.Executor
				for _, dir := range []string{filepath.Join(base, "nm1", "container_01"), filepath.Join(base, "nm2", "deeper", "appcache", "container_02")} {
					e, err := sparkemu.Start(context.Background(), dir, w, nodeEnv(t, py))
					if err != nil {
						t.Fatal(err)
					}
					execs = append(execs, e)
				}
				for i, e := range execs {
					env := filepath.Join(e.Dir, "environment")
					runOn(t, e, env+"\n"+filepath.Join(env, "lib", "python"+xy, "site-packages", "a", "__init__.py")+"\n",
						"-c", "import sys, a; print(sys.prefix); print(a.__file__)")
					// A console script finds the python beside it, wherever
					// the archive was unpacked.
					cmd := exec.Command(filepath.Join(env, "bin", "alpha-cli"), "x", "y")
					cmd.Dir = e.Dir
					cmd.Env = e.Env
					out, err := cmd.CombinedOutput()
					if err != nil || string(out) != "alpha-cli x y\n" {
						t.Fatalf("executor %d: bin/alpha-cli: %q %v", i, out, err)
					}
					if i == 0 {
						// Nothing of the second executor may point into
						// the first one's directory.
						if err := os.RemoveAll(e.Dir); err != nil {
							t.Fatal(err)
						}
					}
				}
			})
		})
	}
}
