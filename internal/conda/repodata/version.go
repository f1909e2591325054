package repodata

import (
	"strings"
)

// compareVersions orders conda version strings after CEP 33, enough to pick
// the latest version of a package for channeldata.json: an optional epoch
// ("1!"), components split at "." "_" "-" into runs of digits and letters,
// numbers above strings, "dev" below every other string, "post" above
// everything, missing components counting as 0, then the local version
// after "+". Callers needing the full ordering pass their own comparator.
func compareVersions(a, b string) int {
	ea, ra := splitEpoch(strings.ToLower(strings.TrimSpace(a)))
	eb, rb := splitEpoch(strings.ToLower(strings.TrimSpace(b)))
	if c := compareNum(ea, eb); c != 0 {
		return c
	}
	pa, la, _ := strings.Cut(ra, "+")
	pb, lb, _ := strings.Cut(rb, "+")
	if c := compareParts(versionParts(pa), versionParts(pb)); c != 0 {
		return c
	}
	return compareParts(versionParts(la), versionParts(lb))
}

func splitEpoch(v string) (string, string) {
	if e, rest, ok := strings.Cut(v, "!"); ok && isDigits(e) {
		return e, rest
	}
	return "0", v
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// A vpart is one run of a version component.
type vpart struct {
	rank int // 0 dev, 1 other string, 2 number, 3 post
	s    string
}

func versionParts(v string) [][]vpart {
	var out [][]vpart
	for _, comp := range strings.FieldsFunc(v, func(r rune) bool { return r == '.' || r == '_' || r == '-' }) {
		var parts []vpart
		for i := 0; i < len(comp); {
			j := i
			digit := comp[i] >= '0' && comp[i] <= '9'
			for j < len(comp) && (comp[j] >= '0' && comp[j] <= '9') == digit {
				j++
			}
			run := comp[i:j]
			switch {
			case digit:
				parts = append(parts, vpart{2, strings.TrimLeft(run, "0")})
			case run == "dev":
				parts = append(parts, vpart{0, run})
			case run == "post":
				parts = append(parts, vpart{3, run})
			default:
				parts = append(parts, vpart{1, run})
			}
			i = j
		}
		// a component starting with letters is read as 0<letters> (1.a == 1.0a)
		if len(parts) > 0 && parts[0].rank != 2 {
			parts = append([]vpart{{2, ""}}, parts...)
		}
		out = append(out, parts)
	}
	return out
}

var zeroPart = []vpart{{2, ""}}

func compareParts(a, b [][]vpart) int {
	for i := 0; i < max(len(a), len(b)); i++ {
		x, y := zeroPart, zeroPart
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		for j := 0; j < max(len(x), len(y)); j++ {
			p, q := vpart{2, ""}, vpart{2, ""}
			if j < len(x) {
				p = x[j]
			}
			if j < len(y) {
				q = y[j]
			}
			if c := comparePart(p, q); c != 0 {
				return c
			}
		}
	}
	return 0
}

func comparePart(p, q vpart) int {
	if p.rank != q.rank {
		if p.rank < q.rank {
			return -1
		}
		return 1
	}
	if p.rank == 2 {
		return compareNum(p.s, q.s)
	}
	return strings.Compare(p.s, q.s)
}

// compareNum compares decimal digit strings without leading zeros, of any
// length.
func compareNum(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}
