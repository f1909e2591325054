package sparksubmit

import (
	"strings"
	"testing"
)

func FuzzArgs(f *testing.F) {
	f.Add("conda_pack", "yarn", "cluster", "environment", "bin/python", "s3a://b/k.tar.gz", "/tmp/k.tar.gz")
	f.Add("pex", "k8s", "client", "", "", "https://h/x.pex", "")
	f.Add("pyfiles", "local", "", "", "", "", "rel/deps.zip")
	f.Add("venv_pack", "emr-serverless", "", "a b", "../x", "s3://b/v.tar.gz", "")
	f.Fuzz(func(t *testing.T, kind, master, mode, alias, interp, url, path string) {
		scheme, _, _ := strings.Cut(url, ":")
		in := Input{Kind: kind, Master: master, DeployMode: mode, Alias: alias, Interpreter: interp,
			Artifacts: []Artifact{{Path: path, URLs: map[string]string{scheme: url}}}}
		w, err := Args(in)
		if err != nil {
			return
		}
		if w.DeployMode == Cluster {
			if _, ok := w.Conf["spark.pyspark.driver.python"]; ok {
				t.Fatal("driver python in cluster mode")
			}
		}
		if py := w.Conf["spark.executorEnv.PYSPARK_PYTHON"]; py != "" && !strings.HasPrefix(py, "./") {
			t.Fatalf("executor python %q is not relative to the working directory", py)
		}
		FormatArgs(w)
		FormatConf(w)
		if _, err := FormatJSON(w); err != nil {
			t.Fatal(err)
		}
		FormatEMRServerless(w)
	})
}
