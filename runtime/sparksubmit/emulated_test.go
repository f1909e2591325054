package sparksubmit_test

import (
	"archive/zip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/condapack"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/execx"
	"github.com/sparkenv/sparkenv/internal/testutil"
	"github.com/sparkenv/sparkenv/internal/testutil/condatest"
	"github.com/sparkenv/sparkenv/runtime/sparksubmit"
	"github.com/sparkenv/sparkenv/runtime/sparksubmit/sparkemu"
)

var shared struct {
	dir   string   // scratch for the packs, made by TestMain
	packs sync.Map // format+symlinks -> *pack
}

type pack struct {
	once sync.Once
	path string
	err  error
}

func TestMain(m *testing.M) {
	var err error
	if shared.dir, err = os.MkdirTemp("", "sparksubmit-test-"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(shared.dir)
	condatest.Cleanup()
	os.Exit(code)
}

func lockedEnv(t *testing.T) (*lock.Resolved, string) {
	t.Helper()
	return condatest.Locked(t, "etl", "/opt/conda", "python 3.11.*", "wordcount", "prefixbin", "prefixtext"), condatest.PkgsDir(t)
}

// buildPack builds the fixture environment with the conda_pack builder.
func buildPack(t *testing.T, cfg *condapack.Config) (string, error) {
	t.Helper()
	res, pkgs := lockedEnv(t)
	key := cfg.Format + "/" + cfg.Symlinks
	v, _ := shared.packs.LoadOrStore(key, &pack{})
	p := v.(*pack)
	p.once.Do(func() {
		base := filepath.Join(shared.dir, "build-"+strings.NewReplacer("/", "-", ".", "-").Replace(key))
		in, out, tmp := filepath.Join(base, "in"), filepath.Join(base, "out"), filepath.Join(base, "tmp")
		for _, d := range []string{in, out, tmp} {
			if p.err = os.MkdirAll(d, 0o755); p.err != nil {
				return
			}
		}
		b, _ := json.Marshal(res)
		if p.err = os.WriteFile(filepath.Join(in, lock.ResolvedFileName), b, 0o644); p.err != nil {
			return
		}
		cfg.Environment = "environment.etl"
		req := &builders.Request{
			Address: "target.conda_pack.etl", Name: "etl", Config: cfg,
			Inputs: []builders.Input{{Address: "environment.etl", Kind: "environment", Name: "etl", Dir: in}},
			OutDir: out, TempDir: tmp, Log: io.Discard, Runner: &execx.Runner{Env: os.Environ()},
			PackageCacheDir: pkgs, Jobs: 2,
		}
		r, err := condapack.New().Build(context.Background(), req)
		if err != nil {
			p.err = err
			return
		}
		os.RemoveAll(tmp)
		p.path = filepath.Join(out, r.Metadata["main"])
	})
	return p.path, p.err
}

// serve publishes a file over http on the loopback interface and returns
// it as a publisher would.
func serve(t *testing.T, file string) sparksubmit.Artifact {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(file))))
	t.Cleanup(srv.Close)
	return sparksubmit.Artifact{Path: file, URLs: map[string]string{"https": srv.URL + "/" + filepath.Base(file)}}
}

type mm struct{ master, mode string }

var masterModes = []mm{
	{sparksubmit.YARN, sparksubmit.Client}, {sparksubmit.YARN, sparksubmit.Cluster},
	{sparksubmit.Kubernetes, sparksubmit.Client}, {sparksubmit.Kubernetes, sparksubmit.Cluster},
	{sparksubmit.Standalone, sparksubmit.Client}, {sparksubmit.Local, sparksubmit.Client},
}

func TestCondaPackOnEmulatedExecutors(t *testing.T) {
	p, err := buildPack(t, &condapack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	art := serve(t, p)
	for _, c := range masterModes {
		t.Run(c.master+"-"+c.mode, func(t *testing.T) {
			w, err := sparksubmit.Args(sparksubmit.Input{Kind: sparksubmit.CondaPack, Artifacts: []sparksubmit.Artifact{art},
				Master: c.master, DeployMode: c.mode, PythonVersion: "3.11"})
			if err != nil {
				t.Fatal(err)
			}
			if c.master != sparksubmit.Local && !strings.Contains(strings.Join(w.Flags, " "), "http://127.0.0.1") {
				t.Fatalf("wiring does not fetch over http: %v", w.Flags)
			}
			e := sparkemu.NewExecutor(t, w)
			out, err := e.Run("-c", "import sys, wordcount; print(sys.prefix); print(sorted(wordcount.count(['b a', 'A']).items()))")
			if err != nil {
				t.Fatal(err)
			}
			want := filepath.Join(e.Dir, "environment") + "\n[('a', 2), ('b', 1)]\n"
			if out != want {
				t.Fatalf("executor printed %q, want %q", out, want)
			}
		})
	}
}

func TestRelocationOnTwoExecutors(t *testing.T) {
	p, err := buildPack(t, &condapack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := sparksubmit.Args(sparksubmit.Input{Kind: sparksubmit.CondaPack, Artifacts: []sparksubmit.Artifact{serve(t, p)},
		Master: sparksubmit.YARN, DeployMode: sparksubmit.Cluster})
	if err != nil {
		t.Fatal(err)
	}
	one, two := sparkemu.NewExecutor(t, w), sparkemu.NewExecutor(t, w)
	for _, e := range []*sparkemu.Executor{one, two} {
		out, err := e.Run("-m", "wordcount")
		if err != nil || strings.TrimSpace(out) != "{}" {
			t.Fatalf("%s: python -m wordcount: %q %v", e.Dir, out, err)
		}
	}
	env := filepath.Join(one.Dir, "environment")
	if out, err := exec.Command(filepath.Join(env, "bin", "conda-unpack")).CombinedOutput(); err != nil {
		t.Fatalf("conda-unpack: %v\n%s", err, out)
	}
	if out, err := exec.Command(filepath.Join(env, "bin", "prefixbin")).Output(); err != nil || strings.TrimSpace(string(out)) != env+"/share/prefixbin/data" {
		t.Fatalf("prefixbin after conda-unpack: %q %v", out, err)
	}
	if out, err := exec.Command(filepath.Join(env, "bin", "prefixtext-where")).Output(); err != nil || strings.TrimSpace(string(out)) != env+"/share/prefixtext" {
		t.Fatalf("prefixtext-where after conda-unpack: %q %v", out, err)
	}
	// The other executor never ran conda-unpack: its interpreter still
	// works, its patched files still name the packing prefix.
	if out, err := two.Run("-c", "import sys, textnorm; print(sys.prefix)"); err != nil || strings.TrimSpace(out) != filepath.Join(two.Dir, "environment") {
		t.Fatalf("second executor: %q %v", out, err)
	}
	if out, _ := exec.Command(filepath.Join(two.Dir, "environment", "bin", "prefixbin")).Output(); !strings.HasPrefix(string(out), condapack.PackPrefix) {
		t.Fatalf("second executor's prefixbin: %q", out)
	}
}

func TestZipArchives(t *testing.T) {
	if _, err := buildPack(t, &condapack.Config{Format: "zip"}); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("zip with links refused by default: err = %v", err)
	}
	p, err := buildPack(t, &condapack.Config{Format: "zip", Symlinks: "dereference"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := sparksubmit.Args(sparksubmit.Input{Kind: sparksubmit.CondaPack, Artifacts: []sparksubmit.Artifact{serve(t, p)},
		Master: sparksubmit.Kubernetes, DeployMode: sparksubmit.Cluster})
	if err != nil {
		t.Fatal(err)
	}
	e := sparkemu.NewExecutor(t, w)
	if out, err := e.Run("-c", "import tinyjson; print(tinyjson.dumps({'b': 1, 'a': [2]}))"); err != nil || out != "{\"a\":[2],\"b\":1}\n" {
		t.Fatalf("zip on a current Hadoop: %q %v", out, err)
	}
	old := sparkemu.NewExecutor(t, w, sparkemu.Options{OldHadoopZip: true})
	if _, err := old.Run("-c", "pass"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("zip on Hadoop before HADOOP-18145 should lose the exec bits: err = %v", err)
	}
}

func TestPyFilesOnPythonPath(t *testing.T) {
	py := testutil.Python(t, "3.11")
	dir := t.TempDir()
	zp := filepath.Join(dir, "deps.zip")
	f, err := os.Create(zp)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, src := range map[string]string{
		"greet/__init__.py": "def hello(who):\n    return 'hello ' + who\n",
		"greet/data.py":     "WHO = 'executor'\n",
	} {
		w, _ := zw.Create(name)
		io.WriteString(w, src)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	w, err := sparksubmit.Args(sparksubmit.Input{Kind: sparksubmit.PyFiles, Artifacts: []sparksubmit.Artifact{serve(t, zp)},
		Master: sparksubmit.YARN, DeployMode: sparksubmit.Cluster})
	if err != nil {
		t.Fatal(err)
	}
	e := sparkemu.NewExecutor(t, w, sparkemu.Options{Env: []string{"PATH=" + filepath.Dir(py) + ":/usr/bin:/bin"}})
	out, err := e.Run("-c", "import greet, greet.data; print(greet.hello(greet.data.WHO)); print(greet.__file__)")
	if err != nil {
		t.Fatal(err)
	}
	if want := "hello executor\n" + filepath.Join(e.Dir, "deps.zip", "greet", "__init__.py") + "\n"; out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}

// TestSparkSubmitLocal runs a real spark-submit with the generated wiring.
func TestSparkSubmitLocal(t *testing.T) {
	home := os.Getenv("SPARK_HOME")
	if home == "" {
		t.Skip("SPARK_HOME is not set: the real spark-submit test needs a Spark installation")
	}
	if testing.Short() {
		t.Skip("starts a JVM")
	}
	p, err := buildPack(t, &condapack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	// A local master runs driver and workers on this machine: both use the
	// environment unpacked here.
	local := filepath.Join(work, "local-env")
	os.MkdirAll(local, 0o755)
	if out, err := exec.Command("tar", "-xzf", p, "-C", local).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	w, err := sparksubmit.Args(sparksubmit.Input{Kind: sparksubmit.CondaPack, Artifacts: []sparksubmit.Artifact{{Path: p}},
		Master: sparksubmit.Local, DeployMode: sparksubmit.Client, LocalPython: filepath.Join(local, "bin", "python")})
	if err != nil {
		t.Fatal(err)
	}
	job := filepath.Join(work, "job.py")
	os.WriteFile(job, []byte(`import sys
from pyspark.sql import SparkSession
from pyspark.sql.functions import udf

spark = SparkSession.builder.getOrCreate()

@udf("string")
def where(s):
    import sys, wordcount
    return sys.prefix + "|" + str(sorted(wordcount.count([s]).items()))

row = spark.createDataFrame([("b a A",)], ["s"]).select(where("s")).first()
print("RESULT " + row[0])
spark.stop()
`), 0o644)
	argv := append([]string{"--master", "local[2]"}, w.Argv()...)
	argv = append(argv, job)
	cmd := exec.Command(filepath.Join(home, "bin", "spark-submit"), argv...)
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("spark-submit %v: %v\n%s", argv, err, out)
	}
	var result string
	for _, l := range strings.Split(string(out), "\n") {
		if r, ok := strings.CutPrefix(l, "RESULT "); ok {
			result = r
		}
	}
	if result != local+"|[('a', 2), ('b', 1)]" {
		t.Fatalf("UDF result %q\n%s", result, out)
	}
}
