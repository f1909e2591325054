package spec

import (
	"fmt"
	"strconv"
	"strings"
)

// version is a dotted numeric version with an optional pre-release tag, as
// used by sparkenv releases ("0.1", "1.2.3", "1.2.3-rc.1").
type version struct {
	nums []int
	pre  string
}

func parseVersion(s string) (version, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "v")
	if i := strings.IndexByte(s, '+'); i >= 0 { // build metadata never affects ordering
		s = s[:i]
	}
	var v version
	if i := strings.IndexByte(s, '-'); i >= 0 {
		v.pre = s[i+1:]
		s = s[:i]
		if v.pre == "" {
			return v, fmt.Errorf("empty pre-release tag")
		}
	}
	if s == "" {
		return v, fmt.Errorf("empty version")
	}
	for _, p := range strings.Split(s, ".") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p == "" || strings.TrimLeft(p, "0123456789") != "" {
			return v, fmt.Errorf("%q is not a number", p)
		}
		v.nums = append(v.nums, n)
	}
	if len(v.nums) > 4 {
		return v, fmt.Errorf("too many components")
	}
	return v, nil
}

func (v version) String() string {
	parts := make([]string, len(v.nums))
	for i, n := range v.nums {
		parts[i] = strconv.Itoa(n)
	}
	s := strings.Join(parts, ".")
	if v.pre != "" {
		s += "-" + v.pre
	}
	return s
}

// compare orders versions numerically; missing components count as zero and a
// pre-release sorts before its release.
func (v version) compare(o version) int {
	n := max(len(v.nums), len(o.nums))
	for i := 0; i < n; i++ {
		a, b := 0, 0
		if i < len(v.nums) {
			a = v.nums[i]
		}
		if i < len(o.nums) {
			b = o.nums[i]
		}
		if a != b {
			if a < b {
				return -1
			}
			return 1
		}
	}
	switch {
	case v.pre == o.pre:
		return 0
	case v.pre == "":
		return 1
	case o.pre == "":
		return -1
	case v.pre < o.pre:
		return -1
	default:
		return 1
	}
}

type versionClause struct {
	op string
	v  version
}

// parseConstraint parses a comma-separated list of clauses, all of which must
// hold: ">= 0.1, < 2", "~> 0.3", "!= 0.2.1", "1.0" (meaning "= 1.0").
func parseConstraint(s string) ([]versionClause, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("the constraint is empty")
	}
	var out []versionClause
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		op := "="
		for _, cand := range []string{">=", "<=", "!=", "~>", ">", "<", "="} {
			if strings.HasPrefix(part, cand) {
				op = cand
				part = strings.TrimSpace(part[len(cand):])
				break
			}
		}
		v, err := parseVersion(part)
		if err != nil {
			return nil, fmt.Errorf("invalid version %q: %w", part, err)
		}
		out = append(out, versionClause{op, v})
	}
	return out, nil
}

func (c versionClause) allows(v version) bool {
	cmp := v.compare(c.v)
	switch c.op {
	case "=":
		return cmp == 0
	case "!=":
		return cmp != 0
	case ">":
		return cmp > 0
	case ">=":
		return cmp >= 0
	case "<":
		return cmp < 0
	case "<=":
		return cmp <= 0
	case "~>":
		// Pessimistic: the last given component may grow, the ones before it
		// are fixed. "~> 1.2" allows 1.x from 1.2; "~> 1.2.3" allows 1.2.x.
		if cmp < 0 {
			return false
		}
		if len(c.v.nums) == 1 {
			return true
		}
		fixed := len(c.v.nums) - 1
		for i := 0; i < fixed; i++ {
			got := 0
			if i < len(v.nums) {
				got = v.nums[i]
			}
			if got != c.v.nums[i] {
				return false
			}
		}
		return true
	}
	return false
}
