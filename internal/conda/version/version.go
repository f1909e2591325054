package version

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// atomKind orders the kinds of atoms the way conda compares them: any
// string is below any number, and "post" (an infinite number) is above
// every finite number.
type atomKind uint8

const (
	kindString atomKind = iota
	kindNumber
	kindPost
)

// atom is one run of digits, of letters, or of '*' inside a component.
type atom struct {
	kind atomKind
	// For kindNumber, the decimal digits without leading zeros ("" is 0),
	// so that numbers of any length compare exactly.
	// For kindString, the text; "dev" is stored as "DEV" so that it sorts
	// below every other (lower-case) string, as conda does.
	text string
}

var zeroAtom = atom{kind: kindNumber}

func compareAtoms(a, b atom) int {
	if a.kind == kindString || b.kind == kindString {
		switch {
		case a.kind == kindString && b.kind == kindString:
			return strings.Compare(a.text, b.text)
		case a.kind == kindString:
			return -1
		default:
			return 1
		}
	}
	if a.kind == kindPost || b.kind == kindPost {
		switch {
		case a.kind == b.kind:
			return 0
		case a.kind == kindPost:
			return 1
		default:
			return -1
		}
	}
	if len(a.text) != len(b.text) {
		if len(a.text) < len(b.text) {
			return -1
		}
		return 1
	}
	return strings.Compare(a.text, b.text)
}

// component is one dot-separated part of a version.
type component []atom

// Version is a parsed conda version. The zero Version is not valid; use
// Parse.
type Version struct {
	text string
	// parts[0] is the epoch, as in conda's VersionOrder.
	parts []component
	local []component
}

// Error is a version that cannot be parsed.
type Error struct {
	Version string
	Reason  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid version %q: %s", e.Version, e.Reason)
}

// ErrInvalid matches every *Error with errors.Is.
var ErrInvalid = errors.New("invalid version")

// Is reports whether target is ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func validChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '.' || c == '_' || c == '+' || c == '!' || c == '*'
}

// Parse parses a conda version. Like conda it lower-cases the text, accepts
// '-' as a separator when the text has no '_', and keeps a trailing '_'
// attached to the last component (openssl-style "1.0.1_" < "1.0.1a").
func Parse(s string) (Version, error) {
	bad := func(reason string) (Version, error) {
		return Version{}, &Error{Version: s, Reason: reason}
	}
	v := strings.ToLower(strings.TrimSpace(s))
	if v == "" {
		return bad("empty version")
	}
	if strings.Contains(v, "-") && !strings.Contains(v, "_") {
		v = strings.ReplaceAll(v, "-", "_")
	}
	for i := 0; i < len(v); i++ {
		if !validChar(v[i]) {
			return bad(fmt.Sprintf("invalid character %q", v[i]))
		}
	}
	epoch := "0"
	if i := strings.IndexByte(v, '!'); i >= 0 {
		if strings.IndexByte(v[i+1:], '!') >= 0 {
			return bad("more than one epoch separator '!'")
		}
		epoch = v[:i]
		v = v[i+1:]
		if epoch == "" || strings.Trim(epoch, "0123456789") != "" {
			return bad("epoch must be an integer")
		}
	}
	var localText string
	hasLocal := false
	if i := strings.IndexByte(v, '+'); i >= 0 {
		if strings.IndexByte(v[i+1:], '+') >= 0 {
			return bad("more than one local version separator '+'")
		}
		localText = v[i+1:]
		hasLocal = true
		v = v[:i]
	}
	if v == "" {
		return bad("missing version before the local version or after the epoch")
	}
	var pieces []string
	if strings.HasSuffix(v, "_") {
		pieces = strings.Split(strings.ReplaceAll(v[:len(v)-1], "_", "."), ".")
		pieces[len(pieces)-1] += "_"
	} else {
		pieces = strings.Split(strings.ReplaceAll(v, "_", "."), ".")
	}
	out := Version{text: s}
	out.parts = make([]component, 0, len(pieces)+1)
	out.parts = append(out.parts, component{numberAtom(epoch)})
	for _, p := range pieces {
		c, ok := splitComponent(p)
		if !ok {
			return bad("empty version component")
		}
		out.parts = append(out.parts, c)
	}
	if hasLocal {
		for _, p := range strings.Split(strings.ReplaceAll(localText, "_", "."), ".") {
			c, ok := splitComponent(p)
			if !ok {
				return bad("empty local version component")
			}
			out.local = append(out.local, c)
		}
	}
	return out, nil
}

// MustParse is Parse for constants in code and tests; it panics on error.
func MustParse(s string) Version {
	v, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return v
}

func numberAtom(digits string) atom {
	return atom{kind: kindNumber, text: strings.TrimLeft(digits, "0")}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// runClass groups bytes into runs the way conda's splitter does: digits,
// stars, and everything else.
func runClass(c byte) int {
	switch {
	case isDigit(c):
		return 0
	case c == '*':
		return 1
	default:
		return 2
	}
}

func splitComponent(p string) (component, bool) {
	if p == "" {
		return nil, false
	}
	var c component
	if !isDigit(p[0]) {
		// Components start with a number so that numbers and strings stay
		// in phase when two versions are compared.
		c = append(c, zeroAtom)
	}
	for i := 0; i < len(p); {
		j := i + 1
		for j < len(p) && runClass(p[j]) == runClass(p[i]) {
			j++
		}
		run := p[i:j]
		switch {
		case isDigit(run[0]):
			c = append(c, numberAtom(run))
		case run == "post":
			c = append(c, atom{kind: kindPost})
		case run == "dev":
			c = append(c, atom{kind: kindString, text: "DEV"})
		default:
			c = append(c, atom{kind: kindString, text: run})
		}
		i = j
	}
	return c, true
}

// compareParts orders two lists of components, filling the shorter one
// with zeros.
func compareParts(a, b []component) int {
	n := max(len(a), len(b))
	for i := 0; i < n; i++ {
		var ca, cb component
		if i < len(a) {
			ca = a[i]
		}
		if i < len(b) {
			cb = b[i]
		}
		m := max(len(ca), len(cb))
		for j := 0; j < m; j++ {
			x, y := zeroAtom, zeroAtom
			if j < len(ca) {
				x = ca[j]
			}
			if j < len(cb) {
				y = cb[j]
			}
			if r := compareAtoms(x, y); r != 0 {
				return r
			}
		}
	}
	return 0
}

// Compare returns -1, 0 or +1 as v sorts before, equal to or after o. The
// local version only breaks ties.
func (v Version) Compare(o Version) int {
	if r := compareParts(v.parts, o.parts); r != 0 {
		return r
	}
	return compareParts(v.local, o.local)
}

// Equal reports whether v and o are the same version for conda ("1.0" and
// "1.0.0" are).
func (v Version) Equal(o Version) bool { return v.Compare(o) == 0 }

// Less reports whether v sorts before o.
func (v Version) Less(o Version) bool { return v.Compare(o) < 0 }

// String is the text the version was parsed from.
func (v Version) String() string { return v.text }

// IsZero reports whether v is the zero Version (never parsed).
func (v Version) IsZero() bool { return v.parts == nil }

// Epoch is the epoch number (0 when none is given). An epoch too large for
// an int64 saturates.
func (v Version) Epoch() int64 {
	if len(v.parts) == 0 {
		return 0
	}
	t := v.parts[0][0].text
	if t == "" {
		return 0
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return 1<<63 - 1
	}
	return n
}

// Segments is the number of dot-separated components, not counting the
// epoch or the local version.
func (v Version) Segments() int {
	if len(v.parts) == 0 {
		return 0
	}
	return len(v.parts) - 1
}

// HasLocal reports whether the version has a local part ("+…").
func (v Version) HasLocal() bool { return len(v.local) > 0 }

// IsDev reports whether any component holds "dev".
func (v Version) IsDev() bool {
	for _, c := range v.parts {
		for _, a := range c {
			if a.kind == kindString && a.text == "DEV" {
				return true
			}
		}
	}
	return false
}

func equalParts(a, b []component) bool { return compareParts(a, b) == 0 }

// StartsWith reports whether v matches the prefix p the way the fuzzy specs
// "p.*" and "=p" do (CEP 29): every component of p equals the component of v
// at the same place, a missing component of v counting as 0. The epoch is a
// component too. When p has a local part, v's local part must start with
// it the same way; otherwise v's local part is ignored. So "1.2.*" matches
// 1.2, 1.2.3 and 1.2.0dev but not 1.2a or 1.20, and "1.2+3.*" matches
// 1.2.5+3 but not 1.2.5 (rattler agrees on all of these).
func (v Version) StartsWith(p Version) bool {
	if !prefixParts(v.parts, p.parts) {
		return false
	}
	return len(p.local) == 0 || prefixParts(v.local, p.local)
}

func prefixParts(a, p []component) bool {
	for i := range p {
		var c component
		if i < len(a) {
			c = a[i]
			// Inside a segment nothing is padded: "post" does not start with
			// "post0" (rattler agrees); a missing segment still counts as 0.
			if len(p[i]) > len(c) {
				return false
			}
		}
		if compareParts([]component{c}, p[i:i+1]) != 0 {
			return false
		}
	}
	return true
}

// CompatibleWith reports whether v satisfies the compatible-release spec
// "~=base": v >= base and v starts with base without its last component
// (CEP 29: "~=0.5.3" is ">=0.5.3,0.5.*"). For a one-component base only the
// epoch has to match. A local part stays on the shortened base, as in
// rattler: "~=3.15.0+b1" needs the local part to start with b1.
func (v Version) CompatibleWith(base Version) bool {
	if v.Compare(base) < 0 || len(base.parts) == 0 {
		return false
	}
	return v.StartsWith(Version{parts: base.parts[:len(base.parts)-1], local: base.local})
}

// Normalized renders the parse the way conda prints VersionOrder.version:
// a list of components, the epoch first, numbers as integers, "post" as inf,
// strings quoted ("dev" as 'DEV'). The local part is not included.
func (v Version) Normalized() string {
	var b strings.Builder
	b.WriteByte('[')
	for i, c := range v.parts {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('[')
		for j, a := range c {
			if j > 0 {
				b.WriteString(", ")
			}
			switch a.kind {
			case kindNumber:
				if a.text == "" {
					b.WriteByte('0')
				} else {
					b.WriteString(a.text)
				}
			case kindPost:
				b.WriteString("inf")
			default:
				b.WriteString("'" + a.text + "'")
			}
		}
		b.WriteByte(']')
	}
	b.WriteByte(']')
	return b.String()
}
