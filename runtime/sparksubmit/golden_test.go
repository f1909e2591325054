package sparksubmit

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// artifacts of each kind as a publisher would report them.
func artifacts(kind string) []Artifact {
	pub := func(name string) Artifact {
		return Artifact{Path: "/build/out/" + name, URLs: map[string]string{
			"s3":    "s3://bucket/envs/" + name,
			"s3a":   "s3a://bucket/envs/" + name,
			"https": "https://bucket.example.com/envs/" + name,
		}}
	}
	switch kind {
	case PEX:
		return []Artifact{pub("etl.pex")}
	case PyFiles:
		return []Artifact{pub("deps.zip"), pub("app.zip")}
	case VenvPack:
		return []Artifact{pub("etl-venv.tar.gz")}
	}
	return []Artifact{pub("etl.tar.gz")}
}

func TestGolden(t *testing.T) {
	for _, kind := range []string{CondaPack, VenvPack, PEX, PyFiles} {
		for _, master := range []string{YARN, Kubernetes, Standalone, Local, EMRServerless} {
			for _, mode := range []string{Client, Cluster} {
				name := kind + "_" + master + "_" + mode
				t.Run(name, func(t *testing.T) {
					w, err := Args(Input{Kind: kind, Artifacts: artifacts(kind), Master: master, DeployMode: mode, PythonVersion: "3.11"})
					var b strings.Builder
					if err != nil {
						b.WriteString("error: " + err.Error() + "\n")
					} else {
						b.WriteString("-- args --\n" + FormatArgs(w) + "\n-- spark-defaults.conf --\n" + FormatConf(w))
						if master == EMRServerless {
							s, err := FormatEMRServerless(w)
							if err != nil {
								t.Fatal(err)
							}
							b.WriteString("-- sparkSubmitParameters --\n" + s + "\n")
						}
						j, err := FormatJSON(w)
						if err != nil {
							t.Fatal(err)
						}
						b.WriteString("-- json --\n" + string(j))
						checkRules(t, w, kind, master, mode)
					}
					golden(t, filepath.Join("testdata", "golden", name+".txt"), b.String())
				})
			}
		}
	}
}

// checkRules restates the rules of the package documentation, so that a
// golden file regenerated with a mistake in it still fails.
func checkRules(t *testing.T, w *Wiring, kind, master, mode string) {
	t.Helper()
	_, driverConf := w.Conf["spark.pyspark.driver.python"]
	_, driverEnv := w.Env["PYSPARK_DRIVER_PYTHON"]
	if mode == Cluster && (driverConf || driverEnv) {
		t.Errorf("cluster mode sets a driver python: %v %v", w.Conf, w.Env)
	}
	args := strings.Join(w.Argv(), " ")
	switch {
	case master == YARN && mode == Cluster && kind != PyFiles:
		if w.Conf["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] == "" {
			t.Error("YARN cluster mode without spark.yarn.appMasterEnv.PYSPARK_PYTHON")
		}
	case master == Kubernetes && mode == Cluster && kind != PyFiles:
		if w.Conf["spark.kubernetes.driverEnv.PYSPARK_PYTHON"] == "" {
			t.Error("k8s cluster mode without spark.kubernetes.driverEnv.PYSPARK_PYTHON")
		}
	}
	switch master {
	case EMRServerless:
		if strings.Contains(args, "s3a://") || len(w.Flags) != 0 {
			t.Errorf("EMR Serverless: %s", args)
		}
	case Local:
		if strings.Contains(args, "s3") || strings.Contains(args, "https:") {
			t.Errorf("local master uses a remote URL: %s", args)
		}
	default:
		if !strings.Contains(args, "s3a://") {
			t.Errorf("%s does not use s3a: %s", master, args)
		}
	}
	if (kind == CondaPack || kind == VenvPack) && w.Conf["spark.executorEnv.PYSPARK_PYTHON"] != "./environment/bin/python" {
		t.Errorf("executor python %q", w.Conf["spark.executorEnv.PYSPARK_PYTHON"])
	}
}

func golden(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		os.MkdirAll(filepath.Dir(file), 0o755)
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

func TestEMRServerlessParameters(t *testing.T) {
	w, err := Args(Input{Kind: CondaPack, Master: EMRServerless, Artifacts: []Artifact{{URLs: map[string]string{
		"s3": "s3://b/envs/etl.tar.gz", "s3a": "s3a://b/envs/etl.tar.gz"}}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := FormatEMRServerless(w)
	if err != nil {
		t.Fatal(err)
	}
	want := "--conf spark.archives=s3://b/envs/etl.tar.gz#environment " +
		"--conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON=./environment/bin/python " +
		"--conf spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if _, err := Args(Input{Kind: CondaPack, Master: EMRServerless, Artifacts: []Artifact{{Path: "/x/env.tar.gz"}}}); err == nil {
		t.Fatal("EMR Serverless without an s3 URL: no error")
	}
}

func TestClientModeLocalPython(t *testing.T) {
	w, err := Args(Input{Kind: CondaPack, Master: YARN, Artifacts: []Artifact{{Path: "/b/env.tar.gz"}},
		LocalPython: "/home/me/env/bin/python", Alias: "pyenv"})
	if err != nil {
		t.Fatal(err)
	}
	got := FormatArgs(w)
	want := "--archives /b/env.tar.gz#pyenv --conf spark.executorEnv.PYSPARK_PYTHON=./pyenv/bin/python " +
		"--conf spark.pyspark.driver.python=/home/me/env/bin/python --conf spark.pyspark.python=./pyenv/bin/python"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if len(w.Notes) != 0 {
		t.Fatalf("notes %v", w.Notes)
	}
}

func TestArgsRefuses(t *testing.T) {
	a := []Artifact{{Path: "/b/env.tar.gz"}}
	for _, in := range []Input{
		{Kind: "wheel", Master: YARN, Artifacts: a},
		{Kind: CondaPack, Master: "mesos", Artifacts: a},
		{Kind: CondaPack, Master: YARN, DeployMode: "both", Artifacts: a},
		{Kind: CondaPack, Master: YARN},
		{Kind: CondaPack, Master: YARN, Artifacts: a, Alias: "a#b"},
		{Kind: CondaPack, Master: YARN, Artifacts: a, Interpreter: "/usr/bin/python"},
		{Kind: CondaPack, Master: YARN, Artifacts: a, Interpreter: "../python"},
		{Kind: CondaPack, Master: YARN, Artifacts: []Artifact{{}}},
		{Kind: CondaPack, Master: YARN, Artifacts: append(a, a...)},
	} {
		if _, err := Args(in); err == nil {
			t.Errorf("%+v: no error", in)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain": "plain", "a b": "'a b'", "it's": `'it'\''s'`, "": "''", "#x": "'#x'", "a#b": "a#b", "$HOME": "'$HOME'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestLocalMasterLocalPython(t *testing.T) {
	w, err := Args(Input{Kind: CondaPack, Master: Local, Artifacts: []Artifact{{Path: "/b/env.tar.gz"}}, LocalPython: "/w/env/bin/python"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"spark.pyspark.python", "spark.pyspark.driver.python", "spark.executorEnv.PYSPARK_PYTHON"} {
		if w.Conf[k] != "/w/env/bin/python" {
			t.Errorf("%s = %q", k, w.Conf[k])
		}
	}
}
