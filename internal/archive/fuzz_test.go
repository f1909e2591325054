package archive

import (
	"path"
	"strings"
	"testing"
)

// naiveMatch is the obvious backtracking definition of Pattern.Match,
// used as the reference for the dynamic program.
func naiveMatch(pat, name []string) bool {
	if len(pat) == 0 {
		return len(name) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(name); i++ {
			if naiveMatch(pat[1:], name[i:]) {
				return true
			}
		}
		return false
	}
	if len(name) == 0 {
		return false
	}
	ok, _ := path.Match(pat[0], name[0])
	return ok && naiveMatch(pat[1:], name[1:])
}

func FuzzPattern(f *testing.F) {
	for _, s := range [][2]string{
		{"**/*.py", "a/b/c.py"}, {"tests/**", "tests"}, {"a/**/b/**/c", "a/x/b/y/z/c"},
		{"[a-", "a"}, {"*", ""}, {"**", "a//b"}, {"a\\*", "a*"}, {"?/**/?", "x/y"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, name string) {
		p, err := CompilePattern(pat)
		if err != nil {
			return
		}
		got := p.Match(name)
		if strings.Count(pat, "**") > 6 || strings.Count(name, "/") > 12 {
			return // keep the exponential reference cheap
		}
		if want := naiveMatch(strings.Split(pat, "/"), strings.Split(name, "/")); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference says %v", pat, name, got, want)
		}
	})
}
