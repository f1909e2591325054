// Package pextest makes the fixtures that tests of wheel-based builders
// need: small but valid wheels (PEP 427: a zip with *.dist-info/METADATA,
// WHEEL and a RECORD that hashes every file) and the environment artifact
// that lists them as pip packages with file:// URLs.
//
// It is for tests only and must never be imported by production code.
package pextest

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
)

// Spec describes one wheel.
type Spec struct {
	Name, Version string
	// Files maps paths inside the wheel (slash-separated) to contents.
	Files map[string]string
	// Requires are Requires-Dist lines.
	Requires []string
	// ConsoleScripts maps command names to "module:function".
	ConsoleScripts map[string]string
	// Exec lists members of Files stored with the executable bit.
	Exec []string
	// Tag is the wheel's compatibility tag; default "py3-none-any".
	Tag string
}

func (s Spec) tag() string {
	if s.Tag != "" {
		return s.Tag
	}
	return "py3-none-any"
}

// Filename is the wheel's file name.
func (s Spec) Filename() string {
	return strings.ReplaceAll(s.Name, "-", "_") + "-" + s.Version + "-" + s.tag() + ".whl"
}

func (s Spec) distInfo() string {
	return strings.ReplaceAll(s.Name, "-", "_") + "-" + s.Version + ".dist-info"
}

// Bytes renders the wheel deterministically.
func (s Spec) Bytes() ([]byte, error) {
	di := s.distInfo()
	files := map[string]string{}
	for k, v := range s.Files {
		files[k] = v
	}
	var meta strings.Builder
	fmt.Fprintf(&meta, "Metadata-Version: 2.1\nName: %s\nVersion: %s\n", s.Name, s.Version)
	for _, r := range s.Requires {
		fmt.Fprintf(&meta, "Requires-Dist: %s\n", r)
	}
	files[di+"/METADATA"] = meta.String()
	purelib := s.tag() == "py3-none-any"
	files[di+"/WHEEL"] = fmt.Sprintf("Wheel-Version: 1.0\nGenerator: sparkenv-test\nRoot-Is-Purelib: %v\nTag: %s\n", purelib, s.tag())
	if len(s.ConsoleScripts) > 0 {
		var ep strings.Builder
		ep.WriteString("[console_scripts]\n")
		for _, k := range sortedKeys(s.ConsoleScripts) {
			fmt.Fprintf(&ep, "%s = %s\n", k, s.ConsoleScripts[k])
		}
		files[di+"/entry_points.txt"] = ep.String()
	}
	var record strings.Builder
	for _, p := range sortedKeys(files) {
		sum := sha256.Sum256([]byte(files[p]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", p, base64.RawURLEncoding.EncodeToString(sum[:]), len(files[p]))
	}
	record.WriteString(di + "/RECORD,,\n")
	files[di+"/RECORD"] = record.String()

	exec := map[string]bool{}
	for _, e := range s.Exec {
		exec[e] = true
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, p := range sortedKeys(files) {
		h := &zip.FileHeader{Name: p, Method: zip.Deflate, Modified: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
		mode := os.FileMode(0o644)
		if exec[p] {
			mode = 0o755
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write([]byte(files[p])); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Write writes the wheel into dir and returns its lock entry with a
// file:// URL.
func (s Spec) Write(dir string) (lock.Wheel, error) {
	b, err := s.Bytes()
	if err != nil {
		return lock.Wheel{}, err
	}
	p := filepath.Join(dir, s.Filename())
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return lock.Wheel{}, err
	}
	sum := sha256.Sum256(b)
	return lock.Wheel{Name: s.Name, Version: s.Version, Filename: s.Filename(), URL: "file://" + filepath.ToSlash(p),
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b))}, nil
}

// Wheels writes every spec into dir (created) and returns the lock
// entries, sorted by file name.
func Wheels(t testing.TB, dir string, specs ...Spec) []lock.Wheel {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var out []lock.Wheel
	for _, s := range specs {
		w, err := s.Write(dir)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Filename < out[j].Filename })
	return out
}

// EnvInput writes an environment artifact holding wheels as its pip
// packages (and no conda packages) and returns it as a build input with
// address "environment.<name>".
func EnvInput(t testing.TB, name string, wheels []lock.Wheel) builders.Input {
	t.Helper()
	dir := t.TempDir()
	r := lock.Resolved{Name: name, Prefix: "/opt/env", Environment: &lock.Environment{
		Platform: "linux-64", Pip: wheels,
	}}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, lock.ResolvedFileName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return builders.Input{Address: "environment." + name, Kind: "environment", Name: name, Dir: dir}
}

// Pair is two wheels most tests use: "alpha" (module a, with a console
// script "alpha-cli") and "beta" (module b, importing a, runnable with
// -m b), plus a fake pyspark.daemon in beta that behaves as Spark's worker
// daemon does at its start: it imports its dependencies and reports.
func Pair() []Spec {
	return []Spec{
		{
			Name: "alpha", Version: "1.0",
			Files: map[string]string{
				"a/__init__.py": "def f():\n    return 'alpha-f'\n",
				"a/cli.py":      "import sys\n\ndef main():\n    print('alpha-cli', ' '.join(sys.argv[1:]))\n    return 0\n",
			},
			ConsoleScripts: map[string]string{"alpha-cli": "a.cli:main"},
		},
		{
			Name: "beta", Version: "2.0", Requires: []string{"alpha"},
			Files: map[string]string{
				"b/__init__.py":       "import a\n\ndef g():\n    return 'beta-g:' + a.f()\n",
				"b/__main__.py":       "import sys\nimport b\nprint('b-main', b.g(), sys.argv[1:])\n",
				"b/app.py":            "import sys\nimport b\n\ndef main():\n    print('entry', b.g(), sys.argv[1:])\n    return 3 if '--fail' in sys.argv else 0\n",
				"pyspark/__init__.py": "",
				"pyspark/daemon.py": "import os, sys\nimport b\n\nif __name__ == '__main__':\n" +
					"    print('daemon', b.g(), sys.argv[0].endswith('daemon.py'), flush=True)\n",
			},
		},
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

// Bulk returns n wheels holding about total bytes of files in all: in each,
// Python modules of about 64 KiB (compressible text) and a data file of
// random bytes (incompressible), half of the wheel's share each. The
// contents are the same on every call.
func Bulk(n int, total int64) []Spec {
	per := total / int64(n)
	r := rand.New(rand.NewPCG(1, 2))
	specs := make([]Spec, n)
	for i := range specs {
		name := fmt.Sprintf("bulk%02d", i)
		files := map[string]string{name + "/__init__.py": fmt.Sprintf("VALUE = %d\n", i)}
		var written int64
		for m := 0; written < per/2; m++ {
			var text strings.Builder
			for k := 0; text.Len() < 64<<10; k++ {
				fmt.Fprintf(&text, "def f%d(x):\n    return x * %d + %d  # %x\n\n", k, k, r.IntN(1000), r.Uint64())
			}
			files[fmt.Sprintf("%s/mod%03d.py", name, m)] = text.String()
			written += int64(text.Len())
		}
		blob := make([]byte, per/2)
		for k := 0; k+8 <= len(blob); k += 8 {
			binary.LittleEndian.PutUint64(blob[k:], r.Uint64())
		}
		files[name+"/data.bin"] = string(blob)
		specs[i] = Spec{Name: name, Version: "1.0", Files: files}
	}
	return specs
}
