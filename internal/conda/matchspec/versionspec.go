package matchspec

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/sparkenv/sparkenv/internal/conda/version"
)

type op uint8

const (
	opAny op = iota
	opEq
	opNe
	opLt
	opLe
	opGt
	opGe
	opStartsWith
	opNotStartsWith
	opCompatible
	opRegex // a regex or a glob with an inner '*', matched against the version text
	opAnd
	opOr
)

var opText = map[op]string{opEq: "==", opNe: "!=", opLt: "<", opLe: "<=", opGt: ">", opGe: ">=", opCompatible: "~="}

// VersionSpec is a parsed version specifier: a tree of clauses joined by
// ',' (AND) and '|' (OR). The zero VersionSpec matches every version.
type VersionSpec struct {
	op    op
	v     version.Version
	re    *regexp.Regexp
	raw   string // the regex or glob text of opRegex
	items []VersionSpec
}

// SpecError is a version specifier or MatchSpec that cannot be parsed.
type SpecError struct {
	Spec   string
	Reason string
	Err    error
}

func (e *SpecError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("invalid spec %q: %s: %v", e.Spec, e.Reason, e.Err)
	}
	return fmt.Sprintf("invalid spec %q: %s", e.Spec, e.Reason)
}

func (e *SpecError) Unwrap() error { return e.Err }

// ParseVersionSpec parses a version specifier such as ">=1.2,<2|3.1.*".
// Spaces around operators are ignored. A bare version means exact
// equality; "1.2.*", "1.2*" and "=1.2" mean "starts with 1.2".
func ParseVersionSpec(s string) (VersionSpec, error) {
	return parseVersionSpec(s, false)
}

// ParseVersionSpecLenient is ParseVersionSpec with the legacy spellings
// conda still accepts in package metadata: a trailing ".*" after an
// ordering operator is dropped (">=2.5.*" means ">=2.5", as in conda and
// rattler's lenient mode). Use it for depends and constrains read from
// repodata, never for what users write.
func ParseVersionSpecLenient(s string) (VersionSpec, error) {
	return parseVersionSpec(s, true)
}

func parseVersionSpec(s string, lenient bool) (VersionSpec, error) {
	if !utf8.ValidString(s) {
		return VersionSpec{}, &SpecError{Spec: s, Reason: "not valid UTF-8"}
	}
	p := vsParser{src: s, toks: tokenize(s), lenient: lenient}
	if len(p.toks) == 0 {
		return VersionSpec{}, &SpecError{Spec: s, Reason: "empty version spec"}
	}
	vs, err := p.or()
	if err != nil {
		return VersionSpec{}, err
	}
	if p.pos != len(p.toks) {
		return VersionSpec{}, &SpecError{Spec: s, Reason: fmt.Sprintf("unexpected %q", p.toks[p.pos])}
	}
	return vs, nil
}

// MustParseVersionSpec is ParseVersionSpec for constants; it panics on error.
func MustParseVersionSpec(s string) VersionSpec {
	vs, err := ParseVersionSpec(s)
	if err != nil {
		panic(err)
	}
	return vs
}

// tokenize splits on the structural characters and drops blanks, so that
// "( >= 1.2 , < 2 )" reads like "(>=1.2,<2)".
func tokenize(s string) []string {
	var toks []string
	var cur strings.Builder
	flush := func() {
		// Blanks between an operator and its version are dropped (CEP 29);
		// any other blank stays and makes the clause invalid.
		if t := strings.TrimSpace(cur.String()); t != "" {
			if m := opBlank.FindStringSubmatch(t); m != nil {
				t = m[1] + m[2]
			}
			toks = append(toks, t)
		}
		cur.Reset()
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '(', ')', '|', ',':
			flush()
			toks = append(toks, string(c))
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return toks
}

var opBlank = regexp.MustCompile(`^(==|!=|<=|>=|~=|<|>|=)\s+(.*)$`)

type vsParser struct {
	lenient bool
	src     string
	toks    []string
	pos     int
}

func (p *vsParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *vsParser) or() (VersionSpec, error) {
	first, err := p.and()
	if err != nil {
		return VersionSpec{}, err
	}
	items := []VersionSpec{first}
	for p.peek() == "|" {
		p.pos++
		next, err := p.and()
		if err != nil {
			return VersionSpec{}, err
		}
		items = append(items, next)
	}
	if len(items) == 1 {
		return first, nil
	}
	return VersionSpec{op: opOr, items: items}, nil
}

func (p *vsParser) and() (VersionSpec, error) {
	first, err := p.term()
	if err != nil {
		return VersionSpec{}, err
	}
	items := []VersionSpec{first}
	for p.peek() == "," {
		p.pos++
		next, err := p.term()
		if err != nil {
			return VersionSpec{}, err
		}
		items = append(items, next)
	}
	if len(items) == 1 {
		return first, nil
	}
	return VersionSpec{op: opAnd, items: items}, nil
}

func (p *vsParser) term() (VersionSpec, error) {
	t := p.peek()
	switch t {
	case "":
		return VersionSpec{}, &SpecError{Spec: p.src, Reason: "missing version constraint at the end"}
	case "(":
		p.pos++
		vs, err := p.or()
		if err != nil {
			return VersionSpec{}, err
		}
		if p.peek() != ")" {
			return VersionSpec{}, &SpecError{Spec: p.src, Reason: "missing ')'"}
		}
		p.pos++
		return vs, nil
	case ")", "|", ",":
		return VersionSpec{}, &SpecError{Spec: p.src, Reason: fmt.Sprintf("missing version constraint before %q", t)}
	}
	p.pos++
	return parseClause(p.src, t, p.lenient)
}

var operators = []string{"==", "!=", "<=", ">=", "~=", "<", ">", "="}

func parseClause(src, c string, lenient bool) (VersionSpec, error) {
	bad := func(reason string, err error) (VersionSpec, error) {
		return VersionSpec{}, &SpecError{Spec: src, Reason: reason, Err: err}
	}
	if strings.HasPrefix(c, "^") || strings.HasSuffix(c, "$") {
		if !strings.HasPrefix(c, "^") || !strings.HasSuffix(c, "$") || len(c) < 2 {
			return bad(fmt.Sprintf("regex %q must start with '^' and end with '$'", c), nil)
		}
		re, err := regexp.Compile(c)
		if err != nil {
			return bad(fmt.Sprintf("bad regex %q", c), err)
		}
		return VersionSpec{op: opRegex, re: re, raw: c}, nil
	}
	if c == "*" {
		return VersionSpec{op: opAny}, nil
	}
	opStr := ""
	for _, o := range operators {
		if strings.HasPrefix(c, o) {
			opStr = o
			break
		}
	}
	if opStr == "" && strings.ContainsAny(c, "<>~=") {
		return bad(fmt.Sprintf("operator in the middle of %q", c), nil)
	}
	rest := c[len(opStr):]
	if rest == "" {
		return bad(fmt.Sprintf("operator %q without a version", c), nil)
	}
	if strings.ContainsAny(rest, "<>~=") {
		return bad(fmt.Sprintf("invalid operator in %q", c), nil)
	}
	fuzzy := false
	if strings.HasSuffix(rest, "*") {
		fuzzy = true
		rest = strings.TrimSuffix(rest, "*")
		rest = strings.TrimSuffix(rest, ".")
	}
	if strings.Contains(rest, "*") {
		if opStr != "" {
			return bad(fmt.Sprintf("'*' may only end the version in %q", c), nil)
		}
		// An inner '*' makes a glob over the version text (CEP 29 string matching).
		for i := 0; i < len(c); i++ {
			if !versionGlobChar(c[i]) {
				return bad(fmt.Sprintf("invalid character %q in version glob %q", c[i], c), nil)
			}
		}
		return VersionSpec{op: opRegex, re: globRegexp(c), raw: c}, nil
	}
	if rest == "" {
		return bad(fmt.Sprintf("missing version in %q", c), nil)
	}
	v, err := version.Parse(rest)
	if err != nil {
		return bad(fmt.Sprintf("bad version in %q", c), err)
	}
	var o op
	switch opStr {
	case "":
		o = opEq
		if fuzzy {
			o = opStartsWith
		}
	case "=":
		o = opStartsWith
	case "==":
		// CEP 29 lists "==1.8.*" among the fuzzy forms.
		o = opEq
		if fuzzy {
			o = opStartsWith
		}
	case "!=":
		o = opNe
		if fuzzy {
			o = opNotStartsWith
		}
	default:
		if fuzzy && !lenient {
			return bad(fmt.Sprintf("'*' cannot be combined with %q (CEP 29)", opStr), nil)
		}
		o = map[string]op{"<": opLt, "<=": opLe, ">": opGt, ">=": opGe, "~=": opCompatible}[opStr]
	}
	return VersionSpec{op: o, v: v}, nil
}

func versionGlobChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("._+!-*", c) >= 0
}

// globRegexp turns a glob into an anchored regexp where only '*' is special.
func globRegexp(g string) *regexp.Regexp {
	parts := strings.Split(g, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^(?:" + strings.Join(parts, ".*") + ")$")
}

// Matches reports whether version v satisfies the spec.
func (s VersionSpec) Matches(v version.Version) bool {
	switch s.op {
	case opAny:
		return true
	case opEq:
		return v.Compare(s.v) == 0
	case opNe:
		return v.Compare(s.v) != 0
	case opLt:
		return v.Compare(s.v) < 0
	case opLe:
		return v.Compare(s.v) <= 0
	case opGt:
		return v.Compare(s.v) > 0
	case opGe:
		return v.Compare(s.v) >= 0
	case opStartsWith:
		return v.StartsWith(s.v)
	case opNotStartsWith:
		return !v.StartsWith(s.v)
	case opCompatible:
		return v.CompatibleWith(s.v)
	case opRegex:
		return s.re.MatchString(v.String())
	case opAnd:
		for _, it := range s.items {
			if !it.Matches(v) {
				return false
			}
		}
		return true
	case opOr:
		for _, it := range s.items {
			if it.Matches(v) {
				return true
			}
		}
		return false
	}
	return false
}

// IsAny reports whether the spec matches every version.
func (s VersionSpec) IsAny() bool { return s.op == opAny }

// exact returns the version of a spec that is a single "==" clause.
func (s VersionSpec) exact() (version.Version, bool) { return s.v, s.op == opEq }

// prefix returns the version of a spec that is a single "starts with" clause.
func (s VersionSpec) prefix() (version.Version, bool) { return s.v, s.op == opStartsWith }

// String renders the spec canonically: "==1.2", "1.2.*", "!=1.2.*",
// ">=1,<2|3.*"; it parses back to an equivalent spec.
func (s VersionSpec) String() string {
	switch s.op {
	case opAny:
		return "*"
	case opStartsWith:
		return s.v.String() + ".*"
	case opNotStartsWith:
		return "!=" + s.v.String() + ".*"
	case opRegex:
		return s.raw
	case opAnd, opOr:
		sep := ","
		if s.op == opOr {
			sep = "|"
		}
		parts := make([]string, len(s.items))
		for i, it := range s.items {
			parts[i] = it.String()
			if s.op == opAnd && it.op == opOr {
				parts[i] = "(" + parts[i] + ")"
			}
		}
		return strings.Join(parts, sep)
	}
	return opText[s.op] + s.v.String()
}
