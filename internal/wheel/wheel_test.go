package wheel

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/sparkenv/sparkenv/internal/testutil"
	"github.com/sparkenv/sparkenv/internal/wheel/wheeltest"
)

func TestParseFilename(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, name, version, build string
		tags                     []string
		bad                      bool
	}{
		{in: "pip-23.0.1-py3-none-any.whl", name: "pip", version: "23.0.1", tags: []string{"py3-none-any"}},
		{in: "Foo_Bar-1.0-1abc-py2.py3-none-any.whl", name: "foo-bar", version: "1.0", build: "1abc", tags: []string{"py2-none-any", "py3-none-any"}},
		{in: "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", name: "numpy", version: "1.26.4",
			tags: []string{"cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-manylinux2014_x86_64"}},
		{in: "zope.interface-6.0-cp311-cp311-linux_x86_64.whl", name: "zope-interface", version: "6.0", tags: []string{"cp311-cp311-linux_x86_64"}},
		{in: "a-1.0-x-py3-none-any.whl", bad: true},   // build tag must start with a digit
		{in: "a-1.0-py3-none.whl", bad: true},         // too few parts
		{in: "a-1.0-py3-none-any.tar.gz", bad: true},  // not a wheel
		{in: "../a-1.0-py3-none-any.whl", bad: true},  // path
		{in: "a-1.0-py3-none-any..whl", bad: true},    // empty tag
		{in: "-1.0-py3-none-any.whl", bad: true},      // empty name
		{in: "a-1.0-1-2-py3-none-any.whl", bad: true}, // too many parts
		{in: "a-1.0-py3-none-any.linux_x86_64.whl", bad: false, name: "a", version: "1.0", tags: []string{"py3-none-any", "py3-none-linux_x86_64"}},
	} {
		name, version, build, tags, err := ParseFilename(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%s: no error", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		var ts []string
		for _, tg := range tags {
			ts = append(ts, tg.String())
		}
		if name != tc.name || version != tc.version || build != tc.build || strings.Join(ts, " ") != strings.Join(tc.tags, " ") {
			t.Errorf("%s: got %s %s %s %v", tc.in, name, version, build, ts)
		}
	}
}

// demo is a wheel using every part of the format: root files, a package
// with data, console and GUI entry points, a #!python script, data and
// header files, a platlib file.
func demo() wheeltest.Spec {
	s := wheeltest.Spec{Name: "Demo.Pkg", Version: "1.2.0", RequiresPython: ">=3.8", RequiresDist: []string{"other>=1", "extra-thing; extra == \"x\""}}
	dd := s.DataDir()
	s.Files = map[string]string{
		"demo_pkg/__init__.py":                  "VALUE = 42\n",
		"demo_pkg/cli.py":                       "import sys\n\ndef main():\n    print('demo says', ' '.join(sys.argv[1:]))\n    return 3\n\nclass App:\n    @staticmethod\n    def run():\n        print('gui')\n",
		"demo_pkg/data/table.csv":               "a,b\n1,2\n",
		"demo_pkg/tool.sh":                      "#!/bin/sh\necho tool\n",
		dd + "/scripts/demo-script":             "#!python\nimport demo_pkg, sys\nprint('script', demo_pkg.VALUE, sys.executable)\n",
		dd + "/scripts/demo-args":               "#!python -u\nprint('args')\n",
		dd + "/scripts/plain.sh":                "#!/bin/sh\necho plain\n",
		dd + "/data/share/demo/readme.txt":      "shared data\n",
		dd + "/headers/demo.h":                  "#define DEMO 1\n",
		dd + "/platlib/demo_native/__init__.py": "NATIVE = True\n",
	}
	s.Executable = []string{"demo_pkg/tool.sh"}
	s.EntryPoints = "[console_scripts]\ndemo = demo_pkg.cli:main\ndemo-extra = demo_pkg.cli:main [x]\n\n[gui_scripts]\ndemo-gui = demo_pkg.cli:App.run\n\n[other.group]\nignored = demo_pkg:thing\n"
	return s
}

func venv(t *testing.T, py, dir string) {
	t.Helper()
	if out, err := exec.Command(py, "-m", "venv", "--without-pip", dir).CombinedOutput(); err != nil {
		t.Fatalf("venv: %v\n%s", err, out)
	}
}

func pipWheel(t *testing.T) string {
	t.Helper()
	m, _ := filepath.Glob("/usr/share/python-wheels/pip-*.whl")
	if len(m) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("no pip wheel in /usr/share/python-wheels: in CI `make deps` installs python3-pip-whl")
		}
		t.Skip("no pip wheel in /usr/share/python-wheels: run `make deps` (Debian package python3-pip-whl)")
	}
	return m[0]
}

// snapshot maps relative paths of the regular files below root to their
// contents.
func snapshot(t *testing.T, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func venvScheme(root, xy, name string) Scheme {
	return Scheme{
		Purelib: filepath.Join(root, "lib", "python"+xy, "site-packages"),
		Platlib: filepath.Join(root, "lib", "python"+xy, "site-packages"),
		Scripts: filepath.Join(root, "bin"),
		Data:    root,
		Headers: filepath.Join(root, "include", "site", "python"+xy, name),
		Python:  filepath.Join(root, "bin", "python"),
		// the venv is used where it was made
		TargetRoot: root, StagingRoot: root,
	}
}

func recordPaths(t *testing.T, b []byte) []string {
	t.Helper()
	es, err := ParseRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Path)
	}
	sort.Strings(out)
	return out
}

// TestInstallMatchesPip installs wheels with pip into one venv and with
// Install into another, and compares the trees: the same files, the same
// bytes except where the installer may differ (INSTALLER, entry point
// launchers, RECORD hashes of those, direct_url.json that pip writes for a
// wheel given by path). Then it runs what was installed.
func TestInstallMatchesPip(t *testing.T) {
	t.Parallel()
	py := testutil.Python(t, "3.11")
	pipWhl := pipWheel(t)
	src := t.TempDir()
	d := demo()
	wheels := []string{}
	p, err := wheeltest.Write(src, d)
	if err != nil {
		t.Fatal(err)
	}
	wheels = append(wheels, p)
	if m, _ := filepath.Glob("/usr/share/python-wheels/*.whl"); len(m) > 0 {
		wheels = append(wheels, m...)
	}
	for _, whl := range wheels {
		t.Run(filepath.Base(whl), func(t *testing.T) {
			t.Parallel()
			if _, err := ReadMetadata(whl); err != nil {
				t.Fatal(err)
			}
			tmp := t.TempDir()
			pipEnv, ourEnv := filepath.Join(tmp, "pip"), filepath.Join(tmp, "ours")
			venv(t, py, pipEnv)
			venv(t, py, ourEnv)
			before := snapshot(t, ourEnv)
			cmd := exec.Command(filepath.Join(pipEnv, "bin", "python"), "-m", "pip", "install", "--no-deps", "--no-index", "--no-compile",
				"--disable-pip-version-check", "--no-cache-dir", whl)
			cmd.Env = []string{"PYTHONPATH=" + pipWhl, "PIP_CONFIG_FILE=/dev/null", "HOME=" + tmp, "PATH=/usr/bin:/bin"}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("pip install: %v\n%s", err, out)
			}
			// pip names the headers directory after the project name of
			// the file name, runs of characters other than letters,
			// digits and '.' written as '-'
			fileName, _, _ := strings.Cut(filepath.Base(whl), "-")
			headers := regexp.MustCompile(`[^A-Za-z0-9.]+`).ReplaceAllString(fileName, "-")
			inst, err := Install(context.Background(), whl, venvScheme(ourEnv, "3.11", headers), Options{Requested: true})
			if err != nil {
				t.Fatal(err)
			}
			theirs, ours := snapshot(t, pipEnv), snapshot(t, ourEnv)
			for k := range before {
				delete(theirs, k)
				delete(ours, k)
			}
			launchers := map[string]bool{}
			for _, s := range inst.Scripts {
				rel, _ := filepath.Rel(ourEnv, s)
				launchers[filepath.ToSlash(rel)] = true
			}
			di := ""
			for k := range theirs {
				if strings.HasSuffix(k, "/direct_url.json") {
					delete(theirs, k)
					di = strings.TrimSuffix(k, "/direct_url.json")
				}
			}
			if di == "" {
				t.Fatal("no dist-info found in pip's install")
			}
			for k, want := range theirs {
				got, ok := ours[k]
				switch {
				case !ok:
					t.Errorf("pip installed %s; Install did not", k)
				case k == di+"/INSTALLER":
					if string(got) != "sparkenv\n" {
						t.Errorf("INSTALLER = %q", got)
					}
				case k == di+"/RECORD":
					var ww []string
					for _, p := range recordPaths(t, want) {
						if !strings.HasSuffix(p, ".dist-info/direct_url.json") {
							ww = append(ww, p)
						}
					}
					if d := diffLists(recordPaths(t, got), ww); d != "" {
						t.Errorf("RECORD paths differ (-ours +pip's):\n%s", d)
					}
				case launchers[k] && bytes.HasPrefix(want, []byte("#!"+pipEnv)):
					// a script: the same once the interpreter paths agree,
					// except for generated launchers, which are ours, and
					// for the arguments of a "#!python -u" line, which pip
					// drops and Install keeps
					w := bytes.ReplaceAll(want, []byte(pipEnv), []byte(ourEnv))
					if bytes.HasPrefix(got, []byte("#!"+ourEnv+"/bin/python -u\n")) {
						w = bytes.Replace(w, []byte("/bin/python\n"), []byte("/bin/python -u\n"), 1)
					}
					if !bytes.Equal(w, got) && !isLauncher(got) {
						t.Errorf("%s differs:\nours:\n%s\npip's:\n%s", k, got, w)
					}
				case !bytes.Equal(got, want):
					t.Errorf("%s differs from pip's", k)
				}
			}
			for k := range ours {
				if _, ok := theirs[k]; !ok {
					t.Errorf("Install wrote %s; pip did not", k)
				}
			}
			// the launchers work: pip installed by Install runs
			if _, ok := ours["bin/pip"]; ok {
				cmd := exec.Command(filepath.Join(ourEnv, "bin", "pip"), "--version")
				cmd.Env = []string{"PATH=/usr/bin:/bin", "PIP_DISABLE_PIP_VERSION_CHECK=1", "HOME=" + tmp}
				out, err := cmd.CombinedOutput()
				if err != nil || !strings.Contains(string(out), "from "+filepath.Join(ourEnv, "lib/python3.11/site-packages/pip")) {
					t.Errorf("bin/pip --version: %v\n%s", err, out)
				}
			}
			// our RECORD must describe our files
			rec, err := ParseRecord(ours[di+"/RECORD"])
			if err != nil {
				t.Fatal(err)
			}
			site := "lib/python3.11/site-packages/"
			for _, e := range rec {
				p := filepath.ToSlash(filepath.Clean(filepath.Join(site, e.Path)))
				b, ok := ours[p]
				if !ok {
					t.Errorf("RECORD lists %s (%s), not installed", e.Path, p)
					continue
				}
				if e.Hash != "" {
					sum := sha256.Sum256(b)
					if e.Hash != "sha256="+b64(sum[:]) || e.Size != int64(len(b)) {
						t.Errorf("RECORD line of %s is wrong", e.Path)
					}
				}
			}
		})
	}
}

func isLauncher(b []byte) bool { return bytes.Contains(b, []byte("entry point")) }

func b64(b []byte) string {
	return strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(stdB64(b)), "=")
}

func TestInstallRuns(t *testing.T) {
	t.Parallel()
	py := testutil.Python(t, "3.11")
	src, env := t.TempDir(), filepath.Join(t.TempDir(), "env")
	venv(t, py, env)
	p, err := wheeltest.Write(src, demo())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Install(context.Background(), p, venvScheme(env, "3.11", "Demo.Pkg"), Options{}); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) (string, int) {
		cmd := exec.Command(filepath.Join(env, "bin", name), args...)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		return string(out), code
	}
	if out, code := run("demo", "hello", "world"); out != "demo says hello world\n" || code != 3 {
		t.Errorf("demo: %q exit %d", out, code)
	}
	if out, _ := run("demo-gui"); out != "gui\n" {
		t.Errorf("demo-gui: %q", out)
	}
	if out, _ := run("demo-script"); !strings.HasPrefix(out, "script 42 "+env) {
		t.Errorf("demo-script: %q", out)
	}
	if out, _ := run("demo-args"); out != "args\n" {
		t.Errorf("demo-args: %q", out)
	}
	if out, _ := run("plain.sh"); out != "plain\n" {
		t.Errorf("plain.sh: %q", out)
	}
	fi, err := os.Stat(filepath.Join(env, "lib/python3.11/site-packages/demo_pkg/tool.sh"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("tool.sh mode: %v %v", fi, err)
	}
}

// TestInstallTargetPaths installs for another prefix than the staging
// tree: scripts name the target's interpreter, RECORD holds relative paths.
func TestInstallTargetPaths(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	stage := t.TempDir()
	p, err := wheeltest.Write(src, demo())
	if err != nil {
		t.Fatal(err)
	}
	s := venvScheme(stage, "3.11", "Demo.Pkg")
	s.Python, s.TargetRoot = "/opt/conda/bin/python3.11", "/opt/conda"
	inst, err := Install(context.Background(), p, s, Options{Installer: "sparkenv"})
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range inst.Scripts {
		b, _ := os.ReadFile(sc)
		if filepath.Base(sc) != "plain.sh" && !bytes.HasPrefix(b, []byte("#!/opt/conda/bin/python3.11")) {
			t.Errorf("%s starts %q", sc, firstLine(b))
		}
		if bytes.Contains(b, []byte(stage)) {
			t.Errorf("%s names the staging tree", sc)
		}
	}
	args, _ := os.ReadFile(filepath.Join(stage, "bin", "demo-args"))
	if firstLine(args) != "#!/opt/conda/bin/python3.11 -u" {
		t.Errorf("demo-args starts %q", firstLine(args))
	}
	for _, e := range inst.Record {
		if filepath.IsAbs(e.Path) {
			t.Errorf("absolute RECORD path %s", e.Path)
		}
	}
	// a long interpreter path goes through /bin/sh
	s2 := venvScheme(t.TempDir(), "3.11", "Demo.Pkg")
	s2.Python = "/opt/" + strings.Repeat("very-long-directory-name/", 6) + "bin/python3.11"
	if _, err := Install(context.Background(), p, s2, Options{}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(s2.Scripts, "demo"))
	if firstLine(b) != "#!/bin/sh" || !bytes.Contains(b, []byte("'''exec' '"+s2.Python+"' \"$0\" \"$@\"")) {
		t.Errorf("long shebang:\n%s", b)
	}
}

func firstLine(b []byte) string {
	l, _, _ := bytes.Cut(b, []byte("\n"))
	return string(l)
}

// TestInstallDeterministic installs twice and compares every byte and mode.
func TestInstallDeterministic(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	p, err := wheeltest.Write(src, demo())
	if err != nil {
		t.Fatal(err)
	}
	digest := func() string {
		root := t.TempDir()
		s := venvScheme(root, "3.11", "Demo.Pkg")
		s.Python = "/opt/conda/bin/python3.11"
		if _, err := Install(context.Background(), p, s, Options{Requested: true}); err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		var paths []string
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			paths = append(paths, p)
			return err
		})
		for _, p := range paths {
			fi, _ := os.Lstat(p)
			rel, _ := filepath.Rel(root, p)
			h.Write([]byte(rel + fi.Mode().String() + "\x00"))
			if fi.Mode().IsRegular() {
				b, _ := os.ReadFile(p)
				h.Write(b)
			}
		}
		return hex.EncodeToString(h.Sum(nil))
	}
	if a, b := digest(), digest(); a != b {
		t.Fatalf("two installs differ: %s %s", a, b)
	}
}

// rawWheel writes a zip with the given entries verbatim.
func rawWheel(t *testing.T, dir, name string, entries [][2]string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		w, err := zw.Create(e[0])
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(e[1]))
	}
	zw.Close()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInstallRefuses(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	good := wheeltest.Spec{Name: "x", Version: "1.0", Files: map[string]string{"x/__init__.py": "\n"}}
	corrupt := good
	corrupt.Corrupt = []string{"x/__init__.py"}
	unlisted := good
	unlisted.Unlisted = map[string]string{"x/evil.py": "import os\n"}
	badKey := good
	badKey.Files = map[string]string{"x-1.0.data/lib/y.py": "\n"}
	valid := "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n"
	meta := "Metadata-Version: 2.1\nName: y\nVersion: 1.0\n"
	cases := map[string]struct {
		path string
		want string
	}{
		"corrupt":  {must(wheeltest.Write(t.TempDir(), corrupt)), "x/__init__.py: content does not match its RECORD hash"},
		"unlisted": {must(wheeltest.Write(t.TempDir(), unlisted)), "x/evil.py is not listed in RECORD"},
		"badkey":   {must(wheeltest.Write(t.TempDir(), badKey)), `unknown scheme key "lib"`},
		"dotdot": {rawWheel(t, src, "y-1.0-py3-none-any.whl", [][2]string{{"y-1.0.dist-info/WHEEL", valid}, {"y-1.0.dist-info/METADATA", meta},
			{"../escape.py", ""}, {"y-1.0.dist-info/RECORD", ""}}), `"../escape.py" is not a clean relative path`},
		"absolute": {rawWheel(t, t.TempDir(), "y-1.0-py3-none-any.whl", [][2]string{{"y-1.0.dist-info/WHEEL", valid}, {"y-1.0.dist-info/METADATA", meta},
			{"/etc/passwd", ""}, {"y-1.0.dist-info/RECORD", ""}}), `absolute path "/etc/passwd"`},
		"md5": {rawWheel(t, t.TempDir(), "y-1.0-py3-none-any.whl", [][2]string{{"y-1.0.dist-info/WHEEL", valid}, {"y-1.0.dist-info/METADATA", meta},
			{"y-1.0.dist-info/RECORD", "y-1.0.dist-info/WHEEL,md5=1B2M2Y8AsgTpgAmY7PhCfg,0\n"}}), `hash algorithm "md5" is not allowed`},
		"two-dist-info": {rawWheel(t, t.TempDir(), "y-1.0-py3-none-any.whl", [][2]string{{"y-1.0.dist-info/WHEEL", valid}, {"z-1.0.dist-info/METADATA", meta}}),
			"exactly one .dist-info"},
		"other-project": {rawWheel(t, t.TempDir(), "y-1.0-py3-none-any.whl", [][2]string{{"z-1.0.dist-info/WHEEL", valid}}),
			"does not belong to y"},
		"wheel-version": {rawWheel(t, t.TempDir(), "y-1.0-py3-none-any.whl", [][2]string{{"y-1.0.dist-info/WHEEL", "Wheel-Version: 2.0\n"}}),
			"Wheel-Version"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			_, err := Install(context.Background(), tc.path, venvScheme(root, "3.11", "x"), Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if ents, _ := os.ReadDir(root); len(ents) != 0 {
				t.Errorf("a refused wheel wrote %d entries", len(ents))
			}
		})
	}
	// a shebang naming the staging tree instead of the target is refused
	st := t.TempDir()
	s0 := venvScheme(st, "3.11", "x")
	s0.TargetRoot, s0.Python = "/opt/conda", filepath.Join(st, "bin", "python3")
	if _, err := Install(context.Background(), must(wheeltest.Write(t.TempDir(), good)), s0, Options{}); err == nil || !strings.Contains(err.Error(), "in the staging tree") {
		t.Errorf("staging python: %v", err)
	}
	// scheme directories outside the staging root are refused
	s := venvScheme(t.TempDir(), "3.11", "x")
	s.StagingRoot = t.TempDir()
	if _, err := Install(context.Background(), must(wheeltest.Write(t.TempDir(), good)), s, Options{}); err == nil || !strings.Contains(err.Error(), "outside the staging root") {
		t.Errorf("scheme outside the staging root: %v", err)
	}
}

func must(p string, err error) string {
	if err != nil {
		panic(err)
	}
	return p
}

func TestReadMetadata(t *testing.T) {
	t.Parallel()
	p := must(wheeltest.Write(t.TempDir(), demo()))
	m, err := ReadMetadata(p)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "Demo.Pkg" || m.Version != "1.2.0" || m.RequiresPython != ">=3.8" || len(m.RequiresDist) != 2 || m.RequiresDist[1] != `extra-thing; extra == "x"` ||
		len(m.Tags) != 1 || m.Tags[0].String() != "py3-none-any" || !m.RootIsPurelib {
		t.Fatalf("%+v", m)
	}
	for _, w := range []string{"pip", "setuptools"} {
		ms, _ := filepath.Glob("/usr/share/python-wheels/" + w + "-*.whl")
		for _, p := range ms {
			m, err := ReadMetadata(p)
			if err != nil {
				t.Fatal(err)
			}
			if Normalize(m.Name) != w || m.RequiresPython == "" {
				t.Errorf("%s: %+v", p, m)
			}
		}
	}
}

func diffLists(a, b []string) string {
	in := func(xs []string) map[string]bool {
		m := map[string]bool{}
		for _, x := range xs {
			m[x] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for _, x := range a {
		if !mb[x] {
			out = append(out, "-"+x)
		}
	}
	for _, x := range b {
		if !ma[x] {
			out = append(out, "+"+x)
		}
	}
	return strings.Join(out, "\n")
}

// TestInstallPlatlib: a wheel whose root is platlib goes there, its
// .data/purelib part to purelib, and RECORD is relative to platlib.
func TestInstallPlatlib(t *testing.T) {
	t.Parallel()
	s := wheeltest.Spec{Name: "nat", Version: "1.0", Tag: "cp311-cp311-manylinux_2_17_x86_64",
		Files: map[string]string{"nat/_core.so": "\x7fELF", "nat-1.0.data/purelib/nat_pure.py": "X = 1\n"}}
	p := must(wheeltest.Write(t.TempDir(), s))
	root := t.TempDir()
	sc := venvScheme(root, "3.11", "nat")
	sc.Platlib = filepath.Join(root, "lib64", "python3.11", "site-packages")
	inst, err := Install(context.Background(), p, sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"lib64/python3.11/site-packages/nat/_core.so", "lib/python3.11/site-packages/nat_pure.py", "lib64/python3.11/site-packages/nat-1.0.dist-info/RECORD"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Error(err)
		}
	}
	var paths []string
	for _, e := range inst.Record {
		paths = append(paths, e.Path)
	}
	want := "../../../lib/python3.11/site-packages/nat_pure.py nat-1.0.dist-info/INSTALLER nat-1.0.dist-info/METADATA nat-1.0.dist-info/RECORD nat-1.0.dist-info/WHEEL nat/_core.so"
	if strings.Join(paths, " ") != want {
		t.Errorf("RECORD paths %v", paths)
	}
}
