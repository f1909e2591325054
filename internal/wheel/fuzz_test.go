package wheel

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParseFilename(f *testing.F) {
	for _, s := range []string{"pip-23.0.1-py3-none-any.whl", "Foo_Bar-1.0-1abc-py2.py3-none-any.whl",
		"numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "a-1-x-y-z.whl", "-.whl", "a-b-c-d-e-f-g.whl"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, version, build, tags, err := ParseFilename(s)
		if err != nil {
			return
		}
		if name == "" || version == "" || len(tags) == 0 || strings.ContainsAny(name+version+build, "/\\-") && strings.Contains(version+build, "-") {
			t.Fatalf("%q: %q %q %q %v", s, name, version, build, tags)
		}
		if Normalize(name) != name {
			t.Fatalf("%q: name %q not normalized", s, name)
		}
	})
}

func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{"a/b.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\nx.dist-info/RECORD,,\n",
		"\"a,b\",sha512=,1\n", "a,md5=x,\n", "a\n", "", "a,sha256=,-1\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := ParseRecord(b)
		if err != nil {
			return
		}
		again, err := ParseRecord(encodeRecord(es))
		if err != nil || len(again) != len(es) {
			t.Fatalf("round trip: %v (%d vs %d)", err, len(again), len(es))
		}
		for i := range es {
			if es[i] != again[i] {
				t.Fatalf("round trip: %+v vs %+v", es[i], again[i])
			}
		}
	})
}

func FuzzParseEntryPoints(f *testing.F) {
	f.Add([]byte("[console_scripts]\ndemo = demo_pkg.cli:main [x]\n[gui_scripts]\ng=a.b:C.d\n"))
	f.Add([]byte("x = y\n[a\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		eps, err := ParseEntryPoints(b)
		if err != nil {
			return
		}
		for _, ep := range eps {
			if ep.Attr == "" {
				continue
			}
			l := string(launcher(ep, "/usr/bin/python3", "sparkenv"))
			if strings.Count(l, "\n") != 8 {
				t.Fatalf("launcher of %+v has an unexpected shape:\n%s", ep, l)
			}
		}
	})
}

func FuzzParseHeaders(f *testing.F) {
	f.Add([]byte("Name: a\nVersion: 1\nRequires-Dist: b\n  continued\n\nbody"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = parseHeaders(b)
	})
}

func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"a/b", "../a", "/a", "a//b", "a/./b", "C:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if checkPath(s) != nil {
			return
		}
		for _, el := range strings.Split(s, "/") {
			if el == ".." {
				t.Fatalf("%q accepted", s)
			}
		}
		if strings.HasPrefix(s, "/") {
			t.Fatalf("%q accepted", s)
		}
	})
}

// FuzzInstall feeds arbitrary archives to Install: it may refuse them but
// must not panic or write outside the scheme's root.
func FuzzInstall(f *testing.F) {
	b, err := demo().Bytes()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "Demo_Pkg-1.2.0-py3-none-any.whl")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		root := filepath.Join(dir, "root")
		s := venvScheme(root, "3.11", "demo")
		s.Python = "/opt/conda/bin/python3.11"
		inst, err := Install(context.Background(), p, s, Options{})
		if err != nil {
			return
		}
		for _, f := range inst.Files {
			if rel, err := filepath.Rel(root, f); err != nil || strings.HasPrefix(rel, "..") {
				t.Fatalf("wrote %s outside %s", f, root)
			}
		}
	})
}
