package matchspec

import (
	"errors"
	"strings"
	"testing"

	"github.com/sparkenv/sparkenv/internal/conda/repodata"
	"github.com/sparkenv/sparkenv/internal/conda/version"
)

func TestVersionSpec(t *testing.T) {
	t.Parallel()
	cases := []struct {
		spec, canon string
		yes, no     []string
	}{
		{"1.2", "==1.2", []string{"1.2", "1.2.0"}, []string{"1.2.1", "1.20"}},
		{"==1.2", "==1.2", []string{"1.2.0"}, []string{"1.2a"}},
		{"!=1.2", "!=1.2", []string{"1.3", "1.2.1"}, []string{"1.2.0"}},
		{">=1.2,<2", ">=1.2,<2", []string{"1.2", "1.9.9"}, []string{"2.0", "1.1", "2.0.1"}},
		{" >= 1.2 , < 2 ", ">=1.2,<2", []string{"1.5"}, []string{"2"}},
		{"1.2.*", "1.2.*", []string{"1.2", "1.2.3", "1.2.0dev", "1.2+3"}, []string{"1.20", "1.2a", "1.3"}},
		{"1.2*", "1.2.*", []string{"1.2.3"}, []string{"1.20"}},
		{"=1.2", "1.2.*", []string{"1.2.3"}, []string{"1.3"}},
		{"==1.2.*", "1.2.*", []string{"1.2.3"}, []string{"1.3"}},
		{"!=1.2.*", "!=1.2.*", []string{"1.3", "1.20"}, []string{"1.2.7"}},
		{"~=1.2.3", "~=1.2.3", []string{"1.2.3", "1.2.9"}, []string{"1.3", "1.2.2"}},
		{"1.2|1.4", "==1.2|==1.4", []string{"1.2", "1.4"}, []string{"1.3"}},
		{"1.2|1.4,>1.3", "==1.2|==1.4,>1.3", []string{"1.2", "1.4"}, []string{"1.3"}},
		{"(1.2|1.4),>1.3", "(==1.2|==1.4),>1.3", []string{"1.4"}, []string{"1.2"}},
		{"((>=1,<2)|>=3),!=3.1", "(>=1,<2|>=3),!=3.1", []string{"1.5", "3.2"}, []string{"2.5", "3.1"}},
		{"*", "*", []string{"0", "1!5"}, nil},
		{"1.*.3", "1.*.3", []string{"1.2.3", "1.x.3"}, []string{"1.2.4"}},
		{"^1\\.2\\.[0-9]+$", "^1\\.2\\.[0-9]+$", []string{"1.2.33"}, []string{"1.2.3a"}},
		{"1!2.*", "1!2.*", []string{"1!2.5"}, []string{"2.5"}},
	}
	for _, c := range cases {
		vs, err := ParseVersionSpec(c.spec)
		if err != nil {
			t.Errorf("%q: %v", c.spec, err)
			continue
		}
		if vs.String() != c.canon {
			t.Errorf("%q: String() = %q, want %q", c.spec, vs.String(), c.canon)
		}
		again, err := ParseVersionSpec(vs.String())
		if err != nil || again.String() != vs.String() {
			t.Errorf("%q: reparse of %q: %v %q", c.spec, vs.String(), err, again.String())
		}
		for _, v := range c.yes {
			if !vs.Matches(version.MustParse(v)) {
				t.Errorf("%q should match %s", c.spec, v)
			}
		}
		for _, v := range c.no {
			if vs.Matches(version.MustParse(v)) {
				t.Errorf("%q should not match %s", c.spec, v)
			}
		}
	}
}

func TestVersionSpecErrors(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", " ", ">=", ">=1.2.*", "<1*", "~=1.2.*", "1.2,", ",1.2", "(1.2", "1.2)", "1.2||1.3",
		"=>1.2", ">==1", "^1.2", "1.2$", "1..2", "1.2 3", ">=1.*.2", "^(a$", "()"} {
		_, err := ParseVersionSpec(s)
		var se *SpecError
		if !errors.As(err, &se) {
			t.Errorf("ParseVersionSpec(%q) = %v, want a *SpecError", s, err)
			continue
		}
		if !strings.Contains(err.Error(), "\""+s+"\"") {
			t.Errorf("error %q does not quote the spec %q", err, s)
		}
	}
}

func rec(name, ver, build string, bn int64) *repodata.Record {
	return &repodata.Record{Name: name, Version: ver, Build: build, BuildNumber: bn, Subdir: "linux-64",
		Channel: "https://conda.anaconda.org/conda-forge/linux-64", MD5: "abc", SHA256: "DEF"}
}

func TestMatchSpec(t *testing.T) {
	t.Parallel()
	cases := []struct {
		spec, canon string
		yes, no     []*repodata.Record
	}{
		{"numpy", "numpy", []*repodata.Record{rec("numpy", "1.0", "0", 0), rec("NumPy", "2", "x", 1)}, []*repodata.Record{rec("numpyx", "1", "0", 0)}},
		{"numpy 1.2", "numpy==1.2", []*repodata.Record{rec("numpy", "1.2.0", "0", 0)}, []*repodata.Record{rec("numpy", "1.2.1", "0", 0)}},
		{"numpy=1.2", "numpy=1.2", []*repodata.Record{rec("numpy", "1.2.1", "0", 0)}, []*repodata.Record{rec("numpy", "1.3", "0", 0)}},
		{"numpy =1.2", "numpy=1.2", []*repodata.Record{rec("numpy", "1.2.1", "0", 0)}, nil},
		{"numpy 1.2 py39_0", "numpy==1.2=py39_0", []*repodata.Record{rec("numpy", "1.2", "py39_0", 0)}, []*repodata.Record{rec("numpy", "1.2", "py38_0", 0), rec("numpy", "1.2.1", "py39_0", 0)}},
		{"numpy=1.2=py39_0", "numpy==1.2=py39_0", []*repodata.Record{rec("numpy", "1.2", "py39_0", 0)}, []*repodata.Record{rec("numpy", "1.2.1", "py39_0", 0)}},
		{"numpy==1.2=py39_0", "numpy==1.2=py39_0", []*repodata.Record{rec("numpy", "1.2", "py39_0", 0)}, nil},
		{"numpy =1.2 py39_0", "numpy=1.2[build='py39_0']", []*repodata.Record{rec("numpy", "1.2.1", "py39_0", 0)}, nil},
		{"numpy >=1.2,<2 py3*", "numpy[build='py3*',version='>=1.2,<2']", []*repodata.Record{rec("numpy", "1.5", "py39_0", 0)}, []*repodata.Record{rec("numpy", "1.5", "py27_0", 0)}},
		{"numpy >= 1.2 , < 2", "numpy[version='>=1.2,<2']", []*repodata.Record{rec("numpy", "1.5", "x", 0)}, []*repodata.Record{rec("numpy", "2", "x", 0)}},
		{"numpy>=1.2", "numpy[version='>=1.2']", []*repodata.Record{rec("numpy", "1.5", "x", 0)}, nil},
		{"python 3.11.* *", "python=3.11", []*repodata.Record{rec("python", "3.11.4", "h_0", 0)}, nil},
		{"python 3.11.* *_cpython", "python=3.11[build='*_cpython']", []*repodata.Record{rec("python", "3.11.4", "h1_cpython", 0)}, []*repodata.Record{rec("python", "3.11.4", "h1_pypy", 0)}},
		{"conda-forge::numpy", "conda-forge::numpy", []*repodata.Record{rec("numpy", "1", "0", 0)}, nil},
		{"defaults::numpy", "defaults::numpy", nil, []*repodata.Record{rec("numpy", "1", "0", 0)}},
		{"conda-forge/linux-64::numpy>=1", "conda-forge/linux-64::numpy[version='>=1']", []*repodata.Record{rec("numpy", "1", "0", 0)}, nil},
		{"conda-forge/osx-64::numpy", "conda-forge/osx-64::numpy", nil, []*repodata.Record{rec("numpy", "1", "0", 0)}},
		{"numpy[version='>=1', build='py3*', build_number='>2']", "numpy[build='py3*',build_number='>2',version='>=1']",
			[]*repodata.Record{rec("numpy", "1", "py39", 3)}, []*repodata.Record{rec("numpy", "1", "py39", 2)}},
		{"numpy 1.0 py2*[build=py3*]", "numpy==1.0[build='py3*']", []*repodata.Record{rec("numpy", "1", "py39", 3)}, []*repodata.Record{rec("numpy", "1", "py27", 2)}},
		{"numpy[name=scipy]", "numpy", []*repodata.Record{rec("numpy", "1", "0", 0)}, nil},
		{"numpy[md5=ABC,sha256=def]", "numpy[md5='abc',sha256='def']", []*repodata.Record{rec("numpy", "1", "0", 0)}, nil},
		{"numpy[subdir=osx-64]", "numpy[subdir='osx-64']", nil, []*repodata.Record{rec("numpy", "1", "0", 0)}},
		{"numpy[build_number=3]", "numpy[build_number='3']", []*repodata.Record{rec("numpy", "1", "0", 3)}, []*repodata.Record{rec("numpy", "1", "0", 4)}},
		{"py*", "py*", []*repodata.Record{rec("python", "1", "0", 0)}, []*repodata.Record{rec("numpy", "1", "0", 0)}},
		{"numpy  # a comment", "numpy", []*repodata.Record{rec("numpy", "1", "0", 0)}, nil},
		{"pytorch=*=cuda*", "pytorch[build='cuda*']", []*repodata.Record{rec("pytorch", "2.1", "cuda118_0", 0)}, []*repodata.Record{rec("pytorch", "2.1", "cpu_0", 0)}},
		{"blas * mkl", "blas[build='mkl']", []*repodata.Record{rec("blas", "1.0", "mkl", 0)}, []*repodata.Record{rec("blas", "1.0", "openblas", 0)}},
		{"foo >=1.0 , < 2.0 =py34_0", "foo[build='py34_0',version='>=1.0,<2.0']", []*repodata.Record{rec("foo", "1.5", "py34_0", 0)}, nil},
		{"numpy=*", "numpy", []*repodata.Record{rec("numpy", "1.5", "x", 0)}, nil},
		{"__glibc >=2.17", "__glibc[version='>=2.17']", []*repodata.Record{rec("__glibc", "2.31", "0", 0)}, []*repodata.Record{rec("__glibc", "2.12", "0", 0)}},
	}
	for _, c := range cases {
		m, err := Parse(c.spec)
		if err != nil {
			t.Errorf("%q: %v", c.spec, err)
			continue
		}
		if got := m.String(); got != c.canon {
			t.Errorf("%q: String() = %q, want %q", c.spec, got, c.canon)
		}
		again, err := Parse(m.String())
		if err != nil || again.String() != m.String() {
			t.Errorf("%q: reparse of %q: %v, %q", c.spec, m.String(), err, again.String())
		}
		for _, r := range c.yes {
			if !m.Matches(r) {
				t.Errorf("%q should match %s", c.spec, r.DistName())
			}
		}
		for _, r := range c.no {
			if m.Matches(r) {
				t.Errorf("%q should not match %s", c.spec, r.DistName())
			}
		}
	}
}

// TestCEP29Equivalents checks the two blocks of equivalent spellings CEP 29
// gives for fuzzy and exact equality.
func TestCEP29Equivalents(t *testing.T) {
	t.Parallel()
	fuzzy := []string{"pkg=1.8", "pkg =1.8", "pkg 1.8.*", "pkg 1.8.* *", "pkg=1.8.*", "pkg=1.8.*=*", "pkg =1.8.* *", "pkg ==1.8.* *", "pkg[version=1.8.*]", `pkg[version="1.8.*"]`}
	exact := []string{"pkg 1.8", "pkg 1.8 *", "pkg==1.8", "pkg=1.8=*", "pkg==1.8=*", "pkg ==1.8 *", "pkg[version=1.8]", `pkg[version="1.8"]`}
	check := func(specs []string, want map[string]bool) {
		for _, s := range specs {
			m, err := Parse(s)
			if err != nil {
				t.Errorf("%q: %v", s, err)
				continue
			}
			for v, w := range want {
				if got := m.Matches(rec("pkg", v, "b", 0)); got != w {
					t.Errorf("%q vs %s: %v, want %v", s, v, got, w)
				}
			}
		}
	}
	check(fuzzy, map[string]bool{"1.8": true, "1.8.1": true, "1.80": false, "1.7": false})
	check(exact, map[string]bool{"1.8": true, "1.8.0": true, "1.8.1": false, "1.80": false})
}

func TestMatchSpecErrors(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "   ", "numpy >=1.2.*", "numpy[version=>=1", "numpy[foo=bar]", "numpy[build_number=x]",
		"num$py", "numpy 1.0 py3 extra", "::numpy", "numpy[version='1',version='2']", "numpy]", "=1.2", "numpy[version=1.2]x"} {
		_, err := Parse(s)
		var se *SpecError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) = %v, want a *SpecError", s, err)
			continue
		}
		if !strings.Contains(err.Error(), "\""+s+"\"") {
			t.Errorf("error %q does not quote the spec %q", err, s)
		}
	}
}

func FuzzParseVersionSpec(f *testing.F) {
	for _, s := range []string{">=1.2,<2|3.*", "1.2", "(1|2),3", "^1.*$", "1.*.3", "~=1.2", "!=1.2.*", "*", ">=", "((", "1.2|"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		vs, err := ParseVersionSpec(s)
		if err != nil {
			return
		}
		again, err := ParseVersionSpec(vs.String())
		if err != nil {
			t.Fatalf("%q renders as %q which does not parse: %v", s, vs.String(), err)
		}
		if again.String() != vs.String() {
			t.Fatalf("%q: %q then %q", s, vs.String(), again.String())
		}
		for _, v := range []string{"1", "1.2", "1.2.3", "2.0a1", "1!1.0", "1.2+3"} {
			pv := version.MustParse(v)
			if vs.Matches(pv) != again.Matches(pv) {
				t.Fatalf("%q and %q disagree on %s", s, vs.String(), v)
			}
		}
	})
}

func FuzzParseMatchSpec(f *testing.F) {
	for _, s := range []string{"numpy", "numpy 1.2 py3_0", "numpy=1.2=py3_0", "c/linux-64::n[version='>=1',build=py*]",
		"n >=1,<2 *", "python 3.11.* *_cpython", "n[build_number='>2', md5=abc]", "n[", "::", "n 1 2 3"} {
		f.Add(s)
	}
	r := rec("numpy", "1.2", "py3_0", 1)
	f.Fuzz(func(t *testing.T, s string) {
		m, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(m.String())
		if err != nil {
			t.Fatalf("%q renders as %q which does not parse: %v", s, m.String(), err)
		}
		if again.String() != m.String() {
			t.Fatalf("%q: %q then %q", s, m.String(), again.String())
		}
		if m.Matches(r) != again.Matches(r) {
			t.Fatalf("%q and %q disagree", s, m.String())
		}
	})
}

func TestLenient(t *testing.T) {
	t.Parallel()
	if _, err := Parse("python-dateutil >=2.5.*"); err == nil {
		t.Error("strict parse should refuse >=2.5.*")
	}
	m, err := ParseLenient("python-dateutil >=2.5.*")
	if err != nil {
		t.Fatal(err)
	}
	if m.String() != "python-dateutil[version='>=2.5']" || !m.Matches(rec("python-dateutil", "2.7.3", "0", 0)) || m.Matches(rec("python-dateutil", "2.4", "0", 0)) {
		t.Errorf("lenient: %s", m.String())
	}
}
