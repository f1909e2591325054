package archive

import (
	"fmt"
	"path"
	"strings"
)

// Pattern is a compiled glob matched against slash-separated paths relative
// to a root. Segments are path.Match patterns, except "**", which matches
// zero or more whole segments: "**/*.py" matches "a.py" and "a/b/c.py", and
// "tests/**" matches "tests" itself and everything below it (so excluding
// it prunes the whole directory). A pattern without "**" matches only at its
// own depth: "*.pyc" matches "x.pyc" but not "a/x.pyc".
type Pattern struct {
	raw  string
	segs []string
}

// CompilePattern checks and compiles a glob pattern.
func CompilePattern(p string) (Pattern, error) {
	if p == "" {
		return Pattern{}, fmt.Errorf("empty glob pattern")
	}
	if strings.HasPrefix(p, "/") {
		return Pattern{}, fmt.Errorf("glob pattern %q is absolute; patterns are relative to the source directory", p)
	}
	segs := strings.Split(p, "/")
	for _, s := range segs {
		switch {
		case s == "":
			return Pattern{}, fmt.Errorf("glob pattern %q has an empty path segment", p)
		case s == "." || s == "..":
			return Pattern{}, fmt.Errorf("glob pattern %q contains %q; patterns are clean relative paths", p, s)
		case s == "**":
		case strings.Contains(s, "**"):
			return Pattern{}, fmt.Errorf("glob pattern %q: \"**\" must be a whole path segment (write \"**/%s\")", p, strings.ReplaceAll(s, "**", "*"))
		default:
			if _, err := path.Match(s, ""); err != nil {
				return Pattern{}, fmt.Errorf("glob pattern %q: %w", p, err)
			}
		}
	}
	return Pattern{raw: p, segs: segs}, nil
}

// String returns the pattern as written.
func (p Pattern) String() string { return p.raw }

// Match reports whether the slash-separated relative path name matches.
func (p Pattern) Match(name string) bool {
	if len(p.segs) == 0 {
		return false
	}
	return matchSegments(p.segs, strings.Split(name, "/"))
}

// matchSegments is a dynamic program over (pattern segment, name segment)
// so that patterns with several "**" stay linear-ish instead of
// backtracking exponentially.
func matchSegments(pat, name []string) bool {
	np, nn := len(pat), len(name)
	// next[j] holds whether pat[i+1:] matches name[j:]; cur is for pat[i:].
	next := make([]bool, nn+1)
	cur := make([]bool, nn+1)
	next[nn] = true // empty pattern matches empty name
	for i := np - 1; i >= 0; i-- {
		for j := nn; j >= 0; j-- {
			if pat[i] == "**" {
				// zero segments (next[j]) or one more (cur[j+1])
				cur[j] = next[j] || (j < nn && cur[j+1])
				continue
			}
			if j == nn {
				cur[j] = false
				continue
			}
			ok, _ := path.Match(pat[i], name[j])
			cur[j] = ok && next[j+1]
		}
		next, cur = cur, next
	}
	return next[0]
}

// compileAll compiles patterns, naming the option they came from in errors.
func compileAll(what string, ps []string) ([]Pattern, error) {
	out := make([]Pattern, 0, len(ps))
	for _, s := range ps {
		p, err := CompilePattern(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func matchAny(ps []Pattern, name string) bool {
	for _, p := range ps {
		if p.Match(name) {
			return true
		}
	}
	return false
}
