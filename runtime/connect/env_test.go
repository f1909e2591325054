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
	"github.com/sparkenv/sparkenv/runtime/connect/connecttest"
)

// TestExecutorView pushes a real environment archive (a venv-style tree: an
// interpreter link, pyvenv.cfg and a package in site-packages), a zip pyfile
// and a PEX, then does what a session's Python worker does: start the
// interpreter the conf names, in the session directory, and import.
func TestExecutorView(t *testing.T) {
	py := testutil.Python(t, "3.11")
	forEachMode(t, func(t *testing.T, mode connecttest.Mode) {
		srv := connecttest.Start(t, connecttest.Config{Mode: mode})
		dir := t.TempDir()
		tarGz(t, filepath.Join(dir, "env.tar.gz"), []tarEntry{
			{name: "bin", dir: true, mode: 0o755},
			{name: "bin/python", link: py},
			{name: "pyvenv.cfg", data: []byte("home = " + filepath.Dir(py) + "\ninclude-system-site-packages = false\nversion = 3.11\n"), mode: 0o644},
			{name: "lib/python3.11/site-packages/sparkenv_probe/__init__.py", data: []byte("VALUE = 'from the bundle'\n"), mode: 0o644},
		})
		env := artifactCA(t, connect.ArchiveName("env.tar.gz", "environment"), filepath.Join(dir, "env.tar.gz"))
		zp := writeFile(t, dir, "deps.zip", zipBytes(t, "", map[string]string{"sparkenv_dep.py": "DEP = 42\n"}), 0o644)
		dep := artifactCA(t, connect.PyFileName(zp), zp)
		pp := writeFile(t, dir, "tool.pex", zipBytes(t, "#!"+py+"\n", map[string]string{"__main__.py": "import sys; print('pex', sys.argv[1:])\n"}), 0o755)
		pex := artifactCA(t, connect.FileName(pp), pp)

		s := connect.Session{ID: connect.NewSessionID(), UserID: "ivy"}
		c := dial(t, srv.URL())
		if _, err := connect.Push(ctx(t), c, s, env, dep, pex); err != nil {
			t.Fatal(err)
		}
		if errs := srv.UnpackErrors(); len(errs) != 0 {
			t.Fatal(errs)
		}
		cwd := srv.SessionDir("ivy", s.ID)

		key, interp := connect.PythonConf(env)
		if key != connect.PythonConfKey || interp != "environment/bin/python" {
			t.Fatalf("PythonConf = %s=%s", key, interp)
		}
		// Workers put .zip pyfiles on sys.path by their file name.
		zipName := filepath.Base(strings.TrimPrefix(dep.Name, "pyfiles/"))
		cmd := exec.Command(interp, "-c", `import json, sys, sparkenv_probe, sparkenv_dep
print(json.dumps({"value": sparkenv_probe.VALUE, "dep": sparkenv_dep.DEP, "prefix": sys.prefix}))`)
		cmd.Dir = cwd
		cmd.Env = append(os.Environ(), "PYTHONPATH="+zipName, "PYTHONNOUSERSITE=1")
		// exec.Command resolves a relative name containing a slash against
		// the working directory the child gets, as executors do.
		cmd.Path = filepath.Join(cwd, interp)
		cmd.Args[0] = interp
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s in %s: %v\n%s", interp, cwd, err, out)
		}
		var got struct {
			Value, Prefix string
			Dep           int
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if got.Value != "from the bundle" || got.Dep != 42 || got.Prefix != filepath.Join(cwd, "environment") {
			t.Fatalf("worker saw %+v", got)
		}

		// The PEX runs as ./<file>, with interpreter arguments as workers
		// pass them.
		_, pexConf := connect.PythonConf(pex)
		run := exec.Command(filepath.Join(cwd, pexConf), "-m", "pyspark.daemon")
		run.Dir = cwd
		out, err = run.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "pex ['-m', 'pyspark.daemon']" {
			t.Fatalf("%s: %v: %s", pexConf, err, out)
		}
	})
}
