package pex

import (
	"fmt"
	"strings"
)

// Constraint is a parsed interpreter constraint: an optional implementation
// name (CPython, PyPy) and release clauses that must all hold, in the
// subset of PEP 440 that makes sense for interpreter versions.
type Constraint struct {
	Impl    string
	Clauses []Clause
}

// Clause is one "op version" pair; Star marks a trailing ".*" (only with ==
// and !=).
type Clause struct {
	Op      string
	Release []int
	Star    bool
}

// String is the canonical form the bootstrap reads: no spaces, clauses
// joined by commas.
func (c Constraint) String() string {
	var b strings.Builder
	b.WriteString(c.Impl)
	for i, cl := range c.Clauses {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(cl.Op)
		for j, n := range cl.Release {
			if j > 0 {
				b.WriteByte('.')
			}
			fmt.Fprint(&b, n)
		}
		if cl.Star {
			b.WriteString(".*")
		}
	}
	return b.String()
}

var ops = []string{"~=", "==", "!=", "<=", ">=", "<", ">"}

// ParseConstraint parses ">=3.10,<3.13", "CPython==3.11.*", "~=3.10" or a
// bare version "3.11" (meaning ==3.11.*).
func ParseConstraint(s string) (Constraint, error) {
	var c Constraint
	rest := strings.Join(strings.Fields(s), "")
	if rest == "" {
		return c, fmt.Errorf("interpreter constraint is empty")
	}
	i := 0
	for i < len(rest) && (isLetter(rest[i]) || i > 0 && (isDigit(rest[i]) || rest[i] == '_')) {
		i++
	}
	if i > 0 {
		c.Impl = rest[:i]
		rest = rest[i:]
		if rest == "" {
			return c, nil
		}
	}
	for _, part := range strings.Split(rest, ",") {
		cl, err := parseClause(part)
		if err != nil {
			return Constraint{}, fmt.Errorf("interpreter constraint %q: %w", s, err)
		}
		c.Clauses = append(c.Clauses, cl)
	}
	return c, nil
}

func isLetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }
func isDigit(b byte) bool  { return b >= '0' && b <= '9' }

func parseClause(s string) (Clause, error) {
	var cl Clause
	for _, op := range ops {
		if strings.HasPrefix(s, op) {
			cl.Op = op
			s = s[len(op):]
			break
		}
	}
	bare := cl.Op == ""
	if bare {
		cl.Op = "=="
	}
	if v, ok := strings.CutSuffix(s, ".*"); ok {
		if cl.Op != "==" && cl.Op != "!=" {
			return cl, fmt.Errorf("%q: a trailing .* goes only with == or !=", cl.Op+s)
		}
		cl.Star = true
		s = v
	}
	if s == "" {
		return cl, fmt.Errorf("clause %q has no version", cl.Op)
	}
	for _, f := range strings.Split(s, ".") {
		if f == "" || len(f) > 6 {
			return cl, fmt.Errorf("%q is not a version of numbers separated by dots", s)
		}
		n := 0
		for k := 0; k < len(f); k++ {
			if !isDigit(f[k]) {
				return cl, fmt.Errorf("%q is not a version of numbers separated by dots", s)
			}
			n = n*10 + int(f[k]-'0')
		}
		cl.Release = append(cl.Release, n)
	}
	if cl.Op == "~=" && len(cl.Release) < 2 {
		return cl, fmt.Errorf("~=%s needs at least two version parts (e.g. ~=3.10)", s)
	}
	if bare && !cl.Star {
		// "3.11" names a release series, as python_version does elsewhere.
		cl.Star = true
	}
	return cl, nil
}

// Allows reports whether the interpreter impl (lower case, e.g. "cpython")
// of version v satisfies c, with the semantics of the bootstrap.
func (c Constraint) Allows(impl string, v []int) bool {
	if c.Impl != "" && !strings.EqualFold(c.Impl, impl) {
		return false
	}
	for _, cl := range c.Clauses {
		if !cl.allows(v) {
			return false
		}
	}
	return true
}

func (cl Clause) allows(have []int) bool {
	want := cl.Release
	if cl.Star {
		eq := len(have) >= len(want) && cmpInts(have[:len(want)], want) == 0
		if cl.Op == "==" {
			return eq
		}
		return !eq
	}
	d := cmpPadded(have, want)
	switch cl.Op {
	case "==":
		return d == 0
	case "!=":
		return d != 0
	case "<":
		return d < 0
	case "<=":
		return d <= 0
	case ">":
		return d > 0
	case ">=":
		return d >= 0
	case "~=":
		prefix := want[:len(want)-1]
		return d >= 0 && len(have) >= len(prefix) && cmpInts(have[:len(prefix)], prefix) == 0
	}
	return false
}

func cmpInts(a, b []int) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return len(a) - len(b)
}

func cmpPadded(a, b []int) int {
	n := max(len(a), len(b))
	for i := 0; i < n; i++ {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}
