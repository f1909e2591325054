package pex

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/sparkenv/sparkenv/internal/wheel"
)

// WheelPythons returns the CPython major.minor versions a wheel file name
// restricts itself to ("3.11"), sorted, or nil when it runs on any version
// its major allows: pure-Python tags (py3, py2.py3) and the stable ABI
// (abi3) are not tied to one minor.
func WheelPythons(filename string) ([]string, error) {
	_, _, _, tags, err := wheel.ParseFilename(filename)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, t := range tags {
		if strings.HasPrefix(t.Interpreter, "py") || t.ABI == "abi3" {
			return nil, nil
		}
		v, ok := strings.CutPrefix(t.Interpreter, "cp")
		if !ok || len(v) < 2 {
			return nil, nil // another implementation: not judged here
		}
		if _, err := strconv.Atoi(v); err != nil {
			return nil, nil
		}
		seen[v[:1]+"."+v[1:]] = true
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out, nil
}

// minorsAllowed lists the CPython 3 minors (3.0 … 3.30) that c lets run,
// judged at the first and a late patch release of each.
func minorsAllowed(c Constraint) []string {
	var out []string
	for m := 0; m <= 30; m++ {
		if c.Allows("cpython", []int{3, m, 0}) || c.Allows("cpython", []int{3, m, 99}) {
			out = append(out, fmt.Sprintf("3.%d", m))
		}
	}
	return out
}
