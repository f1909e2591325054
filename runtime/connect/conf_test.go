package connect_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sparkenv/sparkenv/internal/testutil"
	"github.com/sparkenv/sparkenv/runtime/connect"
)

func TestPythonConf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value, py, sql string
	}{
		{"archives/env-0123456789ab.tar.gz#environment", "environment/bin/python",
			`spark.conf.set("spark.sql.execution.pyspark.python", "environment/bin/python")`,
			"SET spark.sql.execution.pyspark.python=environment/bin/python"},
		{"archives/env.tgz", "env.tgz/bin/python", "", ""},
		{"files/env-0123456789ab.pex", "./env-0123456789ab.pex", "", ""},
		{"files/notes.txt", "", "", ""},
		{"pyfiles/deps.zip", "", "", ""},
	} {
		a := connect.Artifact{Name: tc.name}
		k, v := connect.PythonConf(a)
		if v != tc.value || (v == "") != (k == "") {
			t.Errorf("PythonConf(%s) = %q, %q; want value %q", tc.name, k, v, tc.value)
		}
		if tc.py != "" && connect.PythonConfPython(a) != tc.py {
			t.Errorf("PythonConfPython(%s) = %s", tc.name, connect.PythonConfPython(a))
		}
		if tc.sql != "" && connect.PythonConfSQL(a) != tc.sql {
			t.Errorf("PythonConfSQL(%s) = %s", tc.name, connect.PythonConfSQL(a))
		}
		if v == "" && (connect.PythonConfPython(a) != "" || connect.PythonConfSQL(a) != "") {
			t.Errorf("%s: no conf, yet a statement", tc.name)
		}
	}
}

// fakeSpark stands in for a Spark Connect session in the helper's test: it
// derives artifact names from paths exactly as pyspark's ArtifactManager
// does (kind prefix, the file's base name, '#' fragment for archives) and
// refuses a second add of a name as a Spark 3.5 server does.
const fakeSpark = `
import json, os, sys

class FakeConf:
    def __init__(self):
        self.values = {}
    def set(self, k, v):
        self.values[k] = v

class FakeSpark:
    def __init__(self):
        self.conf = FakeConf()
        self.added = {}
    def addArtifacts(self, *paths, pyfile=False, archive=False, file=False):
        assert len(paths) == 1 and sum([pyfile, archive, file]) == 1
        path, _, fragment = paths[0].partition("#")
        name = os.path.basename(path)
        if archive:
            name = "archives/" + name + ("#" + fragment if fragment else "")
        elif pyfile:
            name = "pyfiles/" + name
        else:
            name = "files/" + name
        if name in self.added:
            raise RuntimeError("<_InactiveRpcError of RPC that terminated with: status = StatusCode.UNKNOWN details = \"\">")
        with open(path, "rb") as f:
            self.added[name] = f.read()

import runpy
spark = FakeSpark()
use_sparkenv = runpy.run_path(sys.argv[1])["use_sparkenv"]
use_sparkenv(spark)
use_sparkenv(spark)  # a second run finds everything in place
import hashlib
print(json.dumps({"conf": spark.conf.values,
                  "added": {k: hashlib.sha256(v).hexdigest() for k, v in spark.added.items()}}))
`

func TestNotebookHelper(t *testing.T) {
	py := testutil.Python(t, "3.11")
	t.Parallel()
	dir := t.TempDir()
	tarGz(t, filepath.Join(dir, "env.tar.gz"), []tarEntry{{name: "bin/python", data: []byte("#!/bin/sh\n"), mode: 0o755}})
	env := artifactCA(t, connect.ArchiveName("env.tar.gz", "environment"), filepath.Join(dir, "env.tar.gz"))
	zp := writeFile(t, dir, "deps.zip", zipBytes(t, "", map[string]string{"dep.py": "X = 1\n"}), 0o644)
	dep := artifactCA(t, connect.PyFileName(zp), zp)

	helper, err := connect.NotebookHelper(env, dep)
	if err != nil {
		t.Fatal(err)
	}
	hp := writeFile(t, dir, "env.sparkenv.py", helper, 0o644)
	for _, v := range []string{"3.6", "3.11", "3.13"} {
		t.Run("py_compile-"+v, func(t *testing.T) {
			if out, err := exec.Command(testutil.Python(t, v), "-m", "py_compile", hp).CombinedOutput(); err != nil {
				t.Fatalf("python%s -m py_compile: %v\n%s", v, err, out)
			}
		})
	}

	runner := writeFile(t, t.TempDir(), "run.py", []byte(fakeSpark), 0o644)
	cmd := exec.Command(py, runner, hp)
	cmd.Dir = t.TempDir() // the helper must find the bundle beside itself, not in the cwd
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper run: %v\n%s%s", err, out, stderr.String())
	}
	var got struct {
		Conf  map[string]string
		Added map[string]string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := map[string]string{env.Name: env.SHA256, dep.Name: dep.SHA256}
	if len(got.Added) != len(want) {
		t.Fatalf("helper added %v, want %v", got.Added, want)
	}
	for n, sum := range want {
		if got.Added[n] != sum {
			t.Errorf("helper added %s with sha256 %q, want %s", n, got.Added[n], sum)
		}
	}
	if got.Conf[connect.PythonConfKey] != "environment/bin/python" {
		t.Errorf("helper conf = %v", got.Conf)
	}

	// A bundle that changed since the helper was written is refused.
	if err := os.WriteFile(zp, []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(py, runner, hp).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "does not match its sha256") {
		t.Fatalf("stale bundle accepted: %v\n%s", err, out)
	}

	if _, err := connect.NotebookHelper(connect.Artifact{Name: "pyfiles/0123456789ab/mod.py", Path: "mod.py"}); err == nil {
		t.Error("a pyfile in a subdirectory cannot be added by pyspark, yet a helper was written")
	}
}
