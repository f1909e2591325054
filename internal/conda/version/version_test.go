package version

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/sparkenv/sparkenv/internal/testutil"
)

// TestOrder checks the ordering example given by conda's documentation of
// VersionOrder (each line sorts before the next; "=" marks equal versions).
func TestOrder(t *testing.T) {
	t.Parallel()
	chain := [][]string{
		{"0.4"}, {"0.4.0"}, {"0.4.1.rc", "0.4.1.RC"}, {"0.4.1"}, {"0.5a1"}, {"0.5b3"},
		{"0.5C1"}, {"0.5"}, {"0.9.6"}, {"0.960923"}, {"1.0"}, {"1.1dev1"}, {"1.1_"},
		{"1.1a1"}, {"1.1.0dev1", "1.1.dev1"}, {"1.1.a1"}, {"1.1.0rc1"}, {"1.1.0", "1.1"},
		{"1.1.0post1", "1.1.post1"}, {"1.1post1"}, {"1996.07.12"}, {"1!0.4.1"}, {"1!3.1.1.6"},
		{"2!0.4.1"},
	}
	// "0.4" and "0.4.0" are equal for conda.
	chain[0] = append(chain[0], "0.4.0")
	chain = append(chain[:1], chain[2:]...)
	for i, group := range chain {
		for _, a := range group {
			va := MustParse(a)
			for _, b := range group {
				if r := va.Compare(MustParse(b)); r != 0 {
					t.Errorf("%s vs %s = %d, want 0", a, b, r)
				}
			}
			for _, later := range chain[i+1:] {
				for _, b := range later {
					vb := MustParse(b)
					if va.Compare(vb) >= 0 || vb.Compare(va) <= 0 {
						t.Errorf("want %s < %s", a, b)
					}
				}
			}
		}
	}
}

func TestSpecialCases(t *testing.T) {
	t.Parallel()
	less := [][2]string{
		{"1.0.1_", "1.0.1a"},
		{"1.0.1_", "1.0.1"}, // "_" is a string atom and strings sort below the fill 0
		{"1.0dev", "1.0a"},
		{"1.0", "1.0post1"},
		{"1.0+1", "1.0+2"},
		{"1.0+abc", "1.0+1"},
		{"1.0", "1.0+1"},
		{"9", "10"},
		{"99999999999999999999999", "100000000000000000000000"},
		{"1-2", "1-3"},
		{"1_2", "1.3"},
	}
	for _, p := range less {
		a, b := MustParse(p[0]), MustParse(p[1])
		if a.Compare(b) != -1 || b.Compare(a) != 1 {
			t.Errorf("want %s < %s, got %d", p[0], p[1], a.Compare(b))
		}
	}
	if !MustParse("1.0").Equal(MustParse("1.0.0")) || !MustParse("01.2").Equal(MustParse("1.2")) {
		t.Error("fill or leading zeros: want equal")
	}
	if MustParse("3!1.0").Epoch() != 3 || MustParse("1.0").Epoch() != 0 {
		t.Error("Epoch")
	}
	if s := MustParse("1.2.3+4").Segments(); s != 3 {
		t.Errorf("Segments = %d", s)
	}
}

func TestInvalid(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", " ", "1..2", "1.", ".1", "1+", "+1", "1!", "a!1", "1!2!3", "1+2+3",
		"1.2 3", "1#2", "1-2_3", "1@2", "é"} {
		_, err := Parse(s)
		if err == nil {
			t.Errorf("Parse(%q): want error", s)
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "\""+s+"\"") {
			t.Errorf("Parse(%q): error %v should be ErrInvalid and quote the version", s, err)
		}
	}
}

func TestStartsWithCompatible(t *testing.T) {
	t.Parallel()
	cases := []struct {
		v, p string
		want bool
	}{
		{"1.2", "1.2", true}, {"1.2.3", "1.2", true}, {"1.20", "1.2", false},
		{"1.2a", "1.2", false}, {"1", "1.2", false}, {"1", "1.0", true}, {"1.2.3rc1", "1.2.3r", false},
		{"1.2.3", "1.2.3r", false}, {"2.1", "1", false}, {"1.2+3.1", "1.2+3", true},
		{"1.3+3", "1.2+3", false}, {"1.2+3", "1.2", true}, {"1.2", "1.2+3", false}, {"1.2.5+3", "1.2+3", true}, {"1.2.5", "1.2+3", false},
		{"1!1.2", "1.2", false}, {"1.2.0dev", "1.2", true},
	}
	for _, c := range cases {
		if got := MustParse(c.v).StartsWith(MustParse(c.p)); got != c.want {
			t.Errorf("%s StartsWith %s = %v", c.v, c.p, got)
		}
	}
	compat := []struct {
		v, b string
		want bool
	}{
		{"1.2.3", "1.2.3", true}, {"1.2.9", "1.2.3", true}, {"1.3", "1.2.3", false},
		{"1.2.2", "1.2.3", false}, {"1.9", "1.2", true}, {"2.0", "1.2", false}, {"5", "4", true}, {"1!5", "4", false},
		{"1.2.3rc1", "1.2", true}, {"1.2.3", "1.2.3rc1", true},
		{"3.15", "3.15.0.0+boost170", false}, {"3.15.0.0+boost170", "3.15.0.0+boost170", true}, {"3.15.0.1", "3.15.0.0+boost170", false},
		{"0.5.3+git1", "0.5.3+git1", true}, {"0.5.4+git1", "0.5.3+git1", true}, {"0.6+git1", "0.5.3+git1", false},
	}
	for _, c := range compat {
		if got := MustParse(c.v).CompatibleWith(MustParse(c.b)); got != c.want {
			t.Errorf("%s ~= %s = %v", c.v, c.b, got)
		}
	}
}

// TestCondaParse compares the parse of every real version with conda's own
// (VersionOrder.version as printed by Python).
func TestCondaParse(t *testing.T) {
	t.Parallel()
	path := testutil.CondaData(t, "parsed_versions.txt")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		text, want, ok := strings.Cut(line, "=[")
		if !ok {
			t.Fatalf("%s: malformed line %q", path, line)
		}
		want = "[" + want
		v, err := Parse(text)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if got := v.Normalized(); got != want {
			t.Errorf("%s: got %s, conda %s", text, got, want)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 20000 {
		t.Fatalf("only %d versions read from %s", n, path)
	}
	t.Logf("%d versions parse as conda parses them", n)
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1.0", "1!2.3+4.5", "1.0.1_", "1.0dev1", "1.0post", "1-2-3", "1.*", "", "1..2", "+", "00.001a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Parse(s)
		if err != nil {
			return
		}
		w, err := Parse(v.String())
		if err != nil {
			t.Fatalf("reparse %q: %v", v.String(), err)
		}
		if v.Compare(w) != 0 || v.Normalized() != w.Normalized() {
			t.Fatalf("round trip of %q changed it", s)
		}
		if v.Compare(v) != 0 || !v.StartsWith(v) {
			t.Fatalf("%q not equal to itself", s)
		}
		_ = v.CompatibleWith(w)
	})
}
