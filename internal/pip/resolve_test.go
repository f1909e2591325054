package pip

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/sparkenv/sparkenv/internal/conda/fetch"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/testutil"
	"github.com/sparkenv/sparkenv/internal/wheel"
	"github.com/sparkenv/sparkenv/internal/wheel/wheeltest"
)

// fixture wheels: a 2.0 needs b>=2, whose only wheel is for manylinux 2.17
// x86_64 and CPython 3.11; a 1.0 accepts any b, and b 1.0 is pure; c is
// pure and needs Python >= 3.8; d has only a Windows wheel; e only an sdist.
func fixtureSpecs() []wheeltest.Spec {
	return []wheeltest.Spec{
		{Name: "a", Version: "1.0", RequiresDist: []string{"b>=1", "c"}, Files: map[string]string{"a/__init__.py": "V = 1\n"}},
		{Name: "a", Version: "2.0", RequiresDist: []string{"b>=2", "c; python_version >= \"3\""}, Files: map[string]string{"a/__init__.py": "V = 2\n"}},
		{Name: "b", Version: "1.0", Files: map[string]string{"b/__init__.py": "\n"}},
		{Name: "b", Version: "2.0", Tag: "cp311-cp311-manylinux_2_17_x86_64", Files: map[string]string{"b/__init__.py": "NATIVE = 1\n"}},
		{Name: "C_Pkg", Version: "1.0", RequiresPython: ">=3.8", Files: map[string]string{"c_pkg/__init__.py": "\n"}},
		{Name: "d", Version: "1.0", Tag: "cp311-cp311-win_amd64", Files: map[string]string{"d/__init__.py": "\n"}},
		{Name: "f", Version: "1.0", RequiresDist: []string{"g; python_version < \"3.11\""}, Files: map[string]string{"f.py": "\n"}},
		{Name: "g", Version: "1.0", Files: map[string]string{"g.py": "\n"}},
		{Name: "h", Version: "1.0", Tag: "cp38-abi3-manylinux_2_17_x86_64", Files: map[string]string{"h.py": "\n"}},
	}
}

type fixture struct {
	dir     string // holds packages/ and simple/
	pkgs    string
	srv     *httptest.Server
	digests map[string]string // file name -> sha256
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), digests: map[string]string{}}
	f.pkgs = filepath.Join(f.dir, "packages")
	if err := os.MkdirAll(f.pkgs, 0o755); err != nil {
		t.Fatal(err)
	}
	var files []IndexFile
	specs := fixtureSpecs()
	// c is named C_Pkg but required as "c": give the requirement its
	// real name
	specs[0].RequiresDist[1] = "c-pkg"
	specs[1].RequiresDist[1] = "C.Pkg; python_version >= \"3\""
	for _, s := range specs {
		p, err := wheeltest.Write(f.pkgs, s)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, indexFile(t, p, s.Name, s.Version, s.RequiresPython))
	}
	sdist := filepath.Join(f.pkgs, "e-1.0.tar.gz")
	if err := os.WriteFile(sdist, []byte("not really a tarball"), 0o644); err != nil {
		t.Fatal(err)
	}
	files = append(files, indexFile(t, sdist, "e", "1.0", ""))
	for _, fl := range files {
		f.digests[fl.Filename] = fl.SHA256
	}
	if err := WriteIndex(filepath.Join(f.dir, "simple"), files); err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(http.FileServer(http.Dir(f.dir)))
	t.Cleanup(f.srv.Close)
	return f
}

func indexFile(t *testing.T, p, project, version, rp string) IndexFile {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return IndexFile{Project: project, Version: version, Filename: filepath.Base(p), URL: "../../packages/" + filepath.Base(p),
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b)), RequiresPython: rp}
}

// pips are the pip installations the tests resolve with: pyenv's 3.11
// and Debian's.
func pips(t *testing.T) map[string][]string {
	out := map[string][]string{}
	out["pyenv"] = []string{testutil.Python(t, "3.11"), "-m", "pip"}
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		if _, err := CheckVersion(context.Background(), nil, []string{"/usr/bin/python3", "-m", "pip"}); err == nil {
			out["debian"] = []string{"/usr/bin/python3", "-m", "pip"}
		}
	}
	return out
}

var linux311 = Target{Platform: "linux-64", Glibc: "2.28", PythonVersion: "3.11"}

func names(ws []lock.Wheel) string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Name+"=="+w.Version)
	}
	return strings.Join(out, " ")
}

func TestResolveIndex(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for label, pip := range pips(t) {
		t.Run(label, func(t *testing.T) {
			t.Parallel()
			cache := t.TempDir()
			req := Request{Requirements: []string{"a>=1"}, IndexURL: f.srv.URL + "/simple", Target: linux311, Pip: pip, CacheDir: cache}
			got, err := Resolve(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if names(got) != "a==2.0 b==2.0 c-pkg==1.0" {
				t.Fatalf("resolved %s", names(got))
			}
			for _, w := range got {
				if w.URL != f.srv.URL+"/packages/"+w.Filename {
					t.Errorf("%s: URL %s", w.Name, w.URL)
				}
				if w.SHA256 != f.digests[w.Filename] {
					t.Errorf("%s: sha256 %s, want %s", w.Name, w.SHA256, f.digests[w.Filename])
				}
				fi, err := os.Stat(filepath.Join(f.pkgs, w.Filename))
				if err != nil || fi.Size() != w.Size {
					t.Errorf("%s: size %d", w.Name, w.Size)
				}
				// stored in the package cache under its sha256
				p := filepath.Join(cache, "sha256", w.SHA256[:2], w.SHA256, w.Filename)
				if err := fetch.Verify(p, w.SHA256); err != nil {
					t.Errorf("cache: %v", err)
				}
			}
			// the same answer again (from a warm pip cache)
			again, err := Resolve(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, again) {
				t.Fatalf("two resolutions differ:\n%v\n%v", got, again)
			}
		})
	}
}

// TestResolveTargetTags: the target, not this machine, decides. An older
// glibc or another Python rules the manylinux_2_17 cp311 wheel of b out,
// and pip's resolver backtracks to a 1.0, which takes the pure b 1.0.
func TestResolveTargetTags(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pip := []string{testutil.Python(t, "3.11"), "-m", "pip"}
	for _, tg := range []Target{
		{Platform: "linux-64", Glibc: "2.12", PythonVersion: "3.11"},
		{Platform: "linux-64", Glibc: "2.28", PythonVersion: "3.10"},
		{Platform: "linux-aarch64", Glibc: "2.28", PythonVersion: "3.11"},
		{Platform: "osx-arm64", PythonVersion: "3.11"},
	} {
		t.Run(tg.Platform+"-"+tg.Glibc+"-"+tg.PythonVersion, func(t *testing.T) {
			t.Parallel()
			got, err := Resolve(context.Background(), Request{Requirements: []string{"a"}, IndexURL: f.srv.URL + "/simple", Target: tg, Pip: pip, CacheDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if names(got) != "a==1.0 b==1.0 c-pkg==1.0" {
				t.Fatalf("resolved %s", names(got))
			}
		})
	}
	// a stable-ABI wheel for 3.8+ fits CPython 3.11, not 3.7
	got, err := Resolve(context.Background(), Request{Requirements: []string{"h"}, IndexURL: f.srv.URL + "/simple", Target: linux311, Pip: pip, CacheDir: t.TempDir()})
	if err != nil || names(got) != "h==1.0" {
		t.Fatalf("h for 3.11: %s %v", names(got), err)
	}
	if _, err := Resolve(context.Background(), Request{Requirements: []string{"h"}, IndexURL: f.srv.URL + "/simple",
		Target: Target{Platform: "linux-64", PythonVersion: "3.7"}, Pip: pip, CacheDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "cp38-abi3-manylinux_2_17_x86_64") {
		t.Fatalf("h for 3.7: %v", err)
	}
	// pip evaluates markers for the Python it runs on: a 3.10 target
	// resolved by a pip on 3.10 gets g
	py310 := []string{testutil.Python(t, "3.10"), "-m", "pip"}
	got, err = Resolve(context.Background(), Request{Requirements: []string{"f"}, IndexURL: f.srv.URL + "/simple",
		Target: Target{Platform: "linux-64", PythonVersion: "3.10"}, Pip: py310, CacheDir: t.TempDir()})
	if err != nil || names(got) != "f==1.0 g==1.0" {
		t.Fatalf("f for 3.10: %s %v", names(got), err)
	}
	// and a pip on 3.11 says that it cannot judge markers for 3.10
	var log strings.Builder
	if _, err := Resolve(context.Background(), Request{Requirements: []string{"f"}, IndexURL: f.srv.URL + "/simple",
		Target: Target{Platform: "linux-64", PythonVersion: "3.10"}, Pip: pip, CacheDir: t.TempDir(), Log: &log}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "warning: ") || !strings.Contains(log.String(), "the target has Python 3.10") {
		t.Errorf("no marker warning in:\n%s", log.String())
	}
	// Python 3.7 rules out c (Requires-Python >= 3.8): nothing fits
	_, err = Resolve(context.Background(), Request{Requirements: []string{"a"}, IndexURL: f.srv.URL + "/simple",
		Target: Target{Platform: "linux-64", PythonVersion: "3.7"}, Pip: pip, CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "c-pkg") {
		t.Fatalf("python 3.7: %v", err)
	}
}

func TestResolveErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pip := []string{testutil.Python(t, "3.11"), "-m", "pip"}
	for _, tc := range []struct {
		req  string
		want []string
	}{
		{"d", []string{"pip requirement d", "no wheel of d", "index " + f.srv.URL + "/simple", "manylinux_2_28_x86_64", "its wheels are for cp311-cp311-win_amd64"}},
		{"e==1.0", []string{"pip requirement e==1.0", "only source distributions", "e-1.0.tar.gz", "wheels only"}},
		{"nothere", []string{"pip requirement nothere", "no wheel of nothere", "linux-64 with python 3.11", "manylinux_2_28_x86_64, ..., manylinux1_x86_64, linux_x86_64, any"}},
	} {
		t.Run(tc.req, func(t *testing.T) {
			t.Parallel()
			_, err := Resolve(context.Background(), Request{Requirements: []string{tc.req}, IndexURL: f.srv.URL + "/simple", Target: linux311, Pip: pip, CacheDir: t.TempDir()})
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	_, err := Resolve(context.Background(), Request{Requirements: []string{"a==2.0", "b==1.0"}, IndexURL: f.srv.URL + "/simple", Target: linux311, Pip: pip, CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "no set of wheels satisfying every requirement") || !strings.Contains(err.Error(), "conflicting dependencies") {
		t.Errorf("conflict: %v", err)
	}
	if _, err := Resolve(context.Background(), Request{Requirements: []string{"--index-url=http://x"}, Target: linux311, Pip: pip, CacheDir: t.TempDir()}); err == nil {
		t.Error("an option passed as a requirement was accepted")
	}
}

func TestResolveFindLinks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pip := []string{testutil.Python(t, "3.11"), "-m", "pip"}
	cache := t.TempDir()
	got, err := Resolve(context.Background(), Request{Requirements: []string{"a"}, FindLinks: []string{f.pkgs}, Target: linux311, Pip: pip, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if names(got) != "a==2.0 b==2.0 c-pkg==1.0" {
		t.Fatalf("resolved %s", names(got))
	}
	for _, w := range got {
		if w.URL != "file://"+filepath.Join(f.pkgs, w.Filename) || w.SHA256 != f.digests[w.Filename] {
			t.Errorf("%+v", w)
		}
	}
	_, err = Resolve(context.Background(), Request{Requirements: []string{"d"}, FindLinks: []string{f.pkgs}, Target: linux311, Pip: pip, CacheDir: cache})
	if err == nil || !strings.Contains(err.Error(), "find-links "+f.pkgs) || !strings.Contains(err.Error(), "win_amd64") {
		t.Fatalf("d from find-links: %v", err)
	}
	// Fetch into another cache from the locked URLs
	other := t.TempDir()
	paths, err := Fetch(context.Background(), got, other, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range paths {
		if err := fetch.Verify(p, got[i].SHA256); err != nil {
			t.Fatal(err)
		}
	}
	// a lock whose hash is wrong is refused
	bad := append([]lock.Wheel(nil), got...)
	bad[0].SHA256 = strings.Repeat("0", 64)
	if _, err := Fetch(context.Background(), bad, t.TempDir(), FetchOptions{}); err == nil || !strings.Contains(err.Error(), bad[0].Filename) {
		t.Fatalf("bad hash: %v", err)
	}
}

func TestFindPip(t *testing.T) {
	t.Parallel()
	argv, err := FindPip(context.Background(), "3.11")
	if err != nil {
		t.Skip(err)
	}
	v, err := CheckVersion(context.Background(), nil, argv)
	if err != nil {
		t.Fatal(err)
	}
	if v.Pip == "" || v.Python == "" {
		t.Fatalf("%v: %+v", argv, v)
	}
}

func TestPlatformTags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		t    Target
		want string
	}{
		{Target{Platform: "linux-64", Glibc: "2.17"}, "manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_16_x86_64 manylinux_2_15_x86_64 manylinux_2_14_x86_64 manylinux_2_13_x86_64 manylinux_2_12_x86_64 manylinux2010_x86_64 manylinux_2_11_x86_64 manylinux_2_10_x86_64 manylinux_2_9_x86_64 manylinux_2_8_x86_64 manylinux_2_7_x86_64 manylinux_2_6_x86_64 manylinux_2_5_x86_64 manylinux1_x86_64 linux_x86_64 any"},
		{Target{Platform: "linux-aarch64", Glibc: "2.18"}, "manylinux_2_18_aarch64 manylinux_2_17_aarch64 manylinux2014_aarch64 linux_aarch64 any"},
		{Target{Platform: "osx-arm64", MacOS: "13.4"}, "macosx_13_0_arm64 any"},
		{Target{Platform: "osx-64"}, "macosx_11_0_x86_64 any"},
		{Target{Platform: "osx-64", MacOS: "10.13=0"}, "macosx_10_13_x86_64 any"},
		{Target{Platform: "linux-64", Glibc: "2.6=0"}, "manylinux_2_6_x86_64 manylinux_2_5_x86_64 manylinux1_x86_64 linux_x86_64 any"},
		{Target{Platform: "win-64"}, "win_amd64 any"},
		{Target{Platform: "noarch"}, "any"},
	} {
		got, err := tc.t.PlatformTags()
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("%+v: %v %v", tc.t, got, err)
		}
	}
	for _, bad := range []Target{{Platform: "linux-64", Glibc: "x"}, {Platform: "beos-64"}, {Platform: "linux-64", Glibc: "3.1"}} {
		if _, err := bad.PlatformTags(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := (Target{PythonVersion: "3"}).normalized(); err == nil {
		t.Error("python version 3 accepted")
	}
	n, _ := Target{PythonVersion: "3.11"}.normalized()
	if n.ABI != "cp311" || n.Implementation != "cp" {
		t.Errorf("%+v", n)
	}
}

func TestParseProjectPage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	err := WriteIndex(dir, []IndexFile{{Project: "A.b", Filename: "a_b-1.0-py3-none-any.whl", URL: "../../packages/a_b-1.0-py3-none-any.whl",
		SHA256: strings.Repeat("ab", 32), RequiresPython: ">=3.8,<4", Version: "1.0"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "a-b", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	base, _ := urlParse("http://h/simple/a-b/")
	ls := ParseProjectPage(base, b)
	if len(ls) != 1 || ls[0].Filename != "a_b-1.0-py3-none-any.whl" || ls[0].RequiresPython != ">=3.8,<4" ||
		ls[0].URL != "http://h/packages/a_b-1.0-py3-none-any.whl#sha256="+strings.Repeat("ab", 32) {
		t.Fatalf("%+v", ls)
	}
	_ = fmt.Sprint(wheel.Normalize("x"))
}

// TestResolveIndexWithoutHashes: an index that links files without
// #sha256 fragments still gives locked, verified hashes.
func TestResolveIndexWithoutHashes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	files := http.FileServer(http.Dir(f.dir))
	strip := regexp.MustCompile(`#sha256=[0-9a-f]{64}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/simple/") && strings.HasSuffix(r.URL.Path, "/") {
			b, err := os.ReadFile(filepath.Join(f.dir, filepath.FromSlash(r.URL.Path), "index.html"))
			if err != nil {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/html")
			w.Write(strip.ReplaceAll(b, nil))
			return
		}
		files.ServeHTTP(w, r)
	}))
	defer srv.Close()
	got, err := Resolve(context.Background(), Request{Requirements: []string{"a"}, IndexURL: srv.URL + "/simple", Target: linux311,
		Pip: []string{testutil.Python(t, "3.11"), "-m", "pip"}, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if names(got) != "a==2.0 b==2.0 c-pkg==1.0" {
		t.Fatalf("resolved %s", names(got))
	}
	for _, w := range got {
		if w.SHA256 != f.digests[w.Filename] {
			t.Errorf("%s: sha256 %s, want %s", w.Filename, w.SHA256, f.digests[w.Filename])
		}
	}
}
