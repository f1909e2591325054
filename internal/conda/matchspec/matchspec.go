package matchspec

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sparkenv/sparkenv/internal/conda/repodata"
	"github.com/sparkenv/sparkenv/internal/conda/version"
)

// MatchSpec is a parsed conda MatchSpec (CEP 29). Empty string fields and
// nil pointers match anything.
type MatchSpec struct {
	Name        string // lower case; may be a glob ("*" matches every name)
	Channel     string // a channel name or URL, without subdir
	Subdir      string
	Version     *VersionSpec // nil: any version
	Build       string       // glob or ^regex$ over the build string
	BuildNumber *BuildNumberSpec
	MD5         string
	SHA256      string
	FileName    string // the "fn" key

	nameRe  *regexp.Regexp
	buildRe *regexp.Regexp
}

// BuildNumberSpec is a comparison against a record's build number, such as
// ">2" or "3".
type BuildNumberSpec struct {
	Op     string // "==", "!=", "<", "<=", ">", ">="
	Number int64
}

// Matches reports whether build number n satisfies the spec.
func (b BuildNumberSpec) Matches(n int64) bool {
	switch b.Op {
	case "==":
		return n == b.Number
	case "!=":
		return n != b.Number
	case "<":
		return n < b.Number
	case "<=":
		return n <= b.Number
	case ">":
		return n > b.Number
	case ">=":
		return n >= b.Number
	}
	return false
}

func (b BuildNumberSpec) String() string {
	if b.Op == "==" {
		return strconv.FormatInt(b.Number, 10)
	}
	return b.Op + strconv.FormatInt(b.Number, 10)
}

func parseBuildNumber(s string) (*BuildNumberSpec, error) {
	s = strings.TrimSpace(s)
	o := "=="
	for _, cand := range []string{"==", "!=", "<=", ">=", "<", ">", "="} {
		if strings.HasPrefix(s, cand) {
			o = cand
			s = strings.TrimSpace(s[len(cand):])
			break
		}
	}
	if o == "=" {
		o = "=="
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("build_number %q is not a non-negative integer", s)
	}
	return &BuildNumberSpec{Op: o, Number: n}, nil
}

// knownSubdirs tells a subdir from the last component of a channel URL.
var knownSubdirs = map[string]bool{
	"noarch": true, "linux-32": true, "linux-64": true, "linux-aarch64": true, "linux-armv6l": true,
	"linux-armv7l": true, "linux-ppc64le": true, "linux-ppc64": true, "linux-s390x": true,
	"linux-riscv64": true, "linux-loong64": true, "osx-64": true, "osx-arm64": true, "win-32": true,
	"win-64": true, "win-arm64": true, "freebsd-64": true, "emscripten-wasm32": true,
	"wasi-wasm32": true, "zos-z": true,
}

// Parse parses a MatchSpec such as "numpy >=1.20,<2 py39*",
// "conda-forge/linux-64::python=3.11" or "pkg[version='>=1', build=py3*]".
func Parse(s string) (MatchSpec, error) { return parse(s, false) }

// ParseLenient is Parse with the legacy version spellings conda accepts in
// package metadata (see ParseVersionSpecLenient). Solvers use it for the
// depends and constrains of records.
func ParseLenient(s string) (MatchSpec, error) { return parse(s, true) }

func parse(s string, lenient bool) (MatchSpec, error) {
	bad := func(reason string, err error) (MatchSpec, error) {
		return MatchSpec{}, &SpecError{Spec: s, Reason: reason, Err: err}
	}
	if !utf8.ValidString(s) {
		return bad("not valid UTF-8", nil)
	}
	str := s
	if i := strings.IndexByte(str, '#'); i >= 0 {
		str = str[:i]
	}
	str = strings.TrimSpace(str)
	if str == "" {
		return bad("empty spec", nil)
	}
	var keys map[string]string
	if strings.HasSuffix(str, "]") {
		i := strings.IndexByte(str, '[')
		if i < 0 {
			return bad("']' without '['", nil)
		}
		var err error
		keys, err = parseBrackets(str[i+1 : len(str)-1])
		if err != nil {
			return bad("bad bracket expression", err)
		}
		str = strings.TrimSpace(str[:i])
	}
	if strings.ContainsAny(str, "[]") {
		return bad("brackets must close the spec", nil)
	}
	var m MatchSpec
	if i := strings.LastIndex(str, "::"); i >= 0 {
		ch := strings.TrimSpace(str[:i])
		str = strings.TrimSpace(str[i+2:])
		if j := strings.IndexByte(ch, ':'); j >= 0 && !strings.Contains(ch, "://") {
			ch = ch[:j] // "channel:namespace" — the namespace is ignored (CEP 29)
		}
		ch = strings.TrimRight(ch, "/")
		if j := strings.LastIndexByte(ch, '/'); j >= 0 && knownSubdirs[ch[j+1:]] {
			m.Subdir = ch[j+1:]
			ch = ch[:j]
		}
		if ch == "" {
			return bad("empty channel before '::'", nil)
		}
		if ch != "*" {
			m.Channel = ch
		}
	}
	// The name runs up to the first space or operator character.
	end := strings.IndexAny(str, " =<>!~")
	if end < 0 {
		end = len(str)
	}
	m.Name = strings.ToLower(str[:end])
	if m.Name == "" {
		return bad("missing package name", nil)
	}
	for i := 0; i < len(m.Name); i++ {
		c := m.Name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '*') {
			return bad(fmt.Sprintf("invalid character %q in package name %q", c, m.Name), nil)
		}
	}
	verText, build, spaceBuild, err := splitVersionBuild(strings.TrimSpace(str[end:]))
	if err != nil {
		return bad("bad version or build", err)
	}
	if verText == "=*" || verText == "==*" {
		verText = "*" // "pytorch=*=cuda*": any version, that build
	}
	if verText != "" {
		// "name=1.2" and "name =1.2 build" are fuzzy; "name=1.2=build" is exact.
		if strings.HasPrefix(verText, "=") && !strings.HasPrefix(verText, "==") &&
			!strings.ContainsAny(verText, ",|()") && build != "" && !spaceBuild {
			verText = "==" + verText[1:]
		}
		vs, err := parseVersionSpec(verText, lenient)
		if err != nil {
			return bad("bad version", err)
		}
		m.Version = &vs
	}
	m.Build = build
	for _, k := range sortedKeys(keys) {
		val := keys[k]
		switch k {
		case "name":
			// CEP 29: the positional name wins.
		case "version":
			vs, err := parseVersionSpec(val, lenient)
			if err != nil {
				return bad("bad version key", err)
			}
			m.Version = &vs
		case "build":
			m.Build = val
		case "build_number":
			bn, err := parseBuildNumber(val)
			if err != nil {
				return bad("bad build_number key", err)
			}
			m.BuildNumber = bn
		case "channel":
			m.Channel = strings.TrimRight(val, "/")
		case "subdir":
			m.Subdir = val
		case "md5":
			m.MD5 = strings.ToLower(val)
		case "sha256":
			m.SHA256 = strings.ToLower(val)
		case "fn":
			m.FileName = val
		default:
			return bad(fmt.Sprintf("unknown key %q in brackets", k), nil)
		}
	}
	if m.Version != nil && m.Version.IsAny() {
		m.Version = nil
	}
	if m.Build == "*" {
		m.Build = ""
	}
	for _, v := range []string{m.Build, m.Channel, m.Subdir, m.FileName, m.MD5, m.SHA256} {
		if strings.Contains(v, "'") && strings.Contains(v, `"`) {
			return bad(fmt.Sprintf("value %q holds both kinds of quotes", v), nil)
		}
	}
	if err := m.compile(); err != nil {
		return bad("bad glob", err)
	}
	return m, nil
}

// MustParse is Parse for constants; it panics on error.
func MustParse(s string) MatchSpec {
	m, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return m
}

func (m *MatchSpec) compile() error {
	var err error
	if strings.Contains(m.Name, "*") {
		m.nameRe = globRegexp(m.Name)
	}
	if m.Build != "" {
		if m.buildRe, err = stringMatcher(m.Build); err != nil {
			return err
		}
	}
	return nil
}

// stringMatcher returns a regexp for a glob or ^regex$ (CEP 29 string
// matching), or nil for an exact string.
func stringMatcher(s string) (*regexp.Regexp, error) {
	if strings.HasPrefix(s, "^") && strings.HasSuffix(s, "$") && len(s) >= 2 {
		return regexp.Compile("(?i)" + s)
	}
	if strings.Contains(s, "*") {
		return regexp.MustCompile("(?i)" + globRegexp(s).String()), nil
	}
	return nil, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// splitVersionBuild splits what follows the name into the version spec and
// the build: separated by blanks ("1.2 py3_0") or by an '=' that is not part
// of an operator ("=1.2=py3_0").
func splitVersionBuild(s string) (ver, build string, spaceBuild bool, err error) {
	if s == "" {
		return "", "", false, nil
	}
	// Blanks next to operators and separators belong to the version.
	s = collapseBlanks(s)
	fields := strings.Fields(s)
	switch len(fields) {
	case 1:
	case 2:
		return fields[0], strings.TrimPrefix(fields[1], "="), true, nil
	default:
		return "", "", false, fmt.Errorf("too many fields in %q (want version and build)", s)
	}
	f := fields[0]
	for i := len(f) - 1; i > 0; i-- {
		if f[i] != '=' {
			continue
		}
		if strings.ContainsRune("=<>!~", rune(f[i-1])) {
			break
		}
		tail := f[i+1:]
		if tail == "" || strings.ContainsAny(tail, "=<>!~,|()") {
			break
		}
		return f[:i], tail, false, nil
	}
	return f, "", false, nil
}

func collapseBlanks(s string) string {
	var b strings.Builder
	fields := strings.Fields(s)
	for i, f := range fields {
		if i > 0 {
			prev := fields[i-1]
			joined := strings.ContainsRune("=<>!~,|(", rune(prev[len(prev)-1])) ||
				strings.ContainsRune(",|)", rune(f[0])) ||
				(strings.ContainsRune("<>!~", rune(f[0])))
			if !joined {
				b.WriteByte(' ')
			}
		}
		b.WriteString(f)
	}
	return b.String()
}

// parseBrackets reads key=value pairs separated by commas or blanks;
// values may be quoted with ' or ".
func parseBrackets(s string) (map[string]string, error) {
	keys := map[string]string{}
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == ',' || s[i] == '\t') {
			i++
		}
		if i == len(s) {
			return keys, nil
		}
		j := i
		for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9' || s[j] == '_' || s[j] == '-') {
			j++
		}
		key := strings.ToLower(s[i:j])
		if key == "" || j == len(s) || s[j] != '=' {
			return nil, fmt.Errorf("want key=value at %q", s[i:])
		}
		j++
		var val string
		if j < len(s) && (s[j] == '\'' || s[j] == '"') {
			q := s[j]
			k := strings.IndexByte(s[j+1:], q)
			if k < 0 {
				return nil, fmt.Errorf("unterminated quote in %q", s[i:])
			}
			val = s[j+1 : j+1+k]
			j = j + 2 + k
			if j < len(s) && s[j] != ',' && s[j] != ' ' {
				return nil, fmt.Errorf("want ',' after the value of %s", key)
			}
		} else {
			k := j
			for k < len(s) && s[k] != ',' && s[k] != ' ' {
				k++
			}
			val = s[j:k]
			j = k
		}
		if _, dup := keys[key]; dup {
			return nil, fmt.Errorf("key %s given twice", key)
		}
		keys[key] = strings.TrimSpace(val)
		i = j
	}
}

// Matches reports whether record r satisfies the spec. A record whose
// version cannot be parsed matches only specs without a version.
func (m MatchSpec) Matches(r *repodata.Record) bool {
	if m.Version == nil {
		return m.MatchesParsed(r, version.Version{})
	}
	v, err := version.Parse(r.Version)
	if err != nil {
		return false
	}
	return m.MatchesParsed(r, v)
}

// MatchesParsed is Matches for a record whose version v the caller has
// already parsed (solvers match each record many times).
func (m MatchSpec) MatchesParsed(r *repodata.Record, v version.Version) bool {
	if !m.MatchesName(r.Name) {
		return false
	}
	if m.Version != nil && !m.Version.Matches(v) {
		return false
	}
	if m.Build != "" {
		if m.buildRe != nil {
			if !m.buildRe.MatchString(r.Build) {
				return false
			}
		} else if !strings.EqualFold(m.Build, r.Build) {
			return false
		}
	}
	if m.BuildNumber != nil && !m.BuildNumber.Matches(r.BuildNumber) {
		return false
	}
	if m.MD5 != "" && !strings.EqualFold(m.MD5, r.MD5) {
		return false
	}
	if m.SHA256 != "" && !strings.EqualFold(m.SHA256, r.SHA256) {
		return false
	}
	if m.Subdir != "" && m.Subdir != "*" && !globEqual(m.Subdir, r.Subdir) {
		return false
	}
	if m.FileName != "" && !globEqual(m.FileName, r.FileName) {
		return false
	}
	if m.Channel != "" && !channelMatches(m.Channel, r.Channel) {
		return false
	}
	return true
}

// MatchesName reports whether a package name satisfies the spec's name.
func (m MatchSpec) MatchesName(name string) bool {
	if m.nameRe != nil {
		return m.nameRe.MatchString(strings.ToLower(name))
	}
	if m.Name == "*" {
		return true
	}
	return strings.EqualFold(m.Name, name)
}

func globEqual(pattern, s string) bool {
	if strings.Contains(pattern, "*") {
		return regexp.MustCompile("(?i)" + globRegexp(pattern).String()).MatchString(s)
	}
	return strings.EqualFold(pattern, s)
}

// channelMatches compares a channel name or URL with a record's channel,
// which may be a name, a URL, or a URL with the subdir.
func channelMatches(want, have string) bool {
	norm := func(c string) string {
		c = strings.ToLower(strings.TrimRight(c, "/"))
		if j := strings.LastIndexByte(c, '/'); j >= 0 && knownSubdirs[c[j+1:]] {
			c = c[:j]
		}
		return c
	}
	w, h := norm(want), norm(have)
	if strings.Contains(w, "*") {
		return globEqual(w, h)
	}
	return w == h || strings.HasSuffix(h, "/"+w) || strings.HasSuffix(w, "/"+h)
}

// String renders the spec canonically (CEP 29 appendix A):
// channel/subdir::name==version=build[key='value',...].
func (m MatchSpec) String() string {
	var b strings.Builder
	keys := map[string]string{}
	if m.Channel != "" {
		b.WriteString(m.Channel)
		if m.Subdir != "" && !strings.Contains(m.Subdir, "*") && !strings.Contains(m.Channel, "*") {
			b.WriteString("/" + m.Subdir)
		} else if m.Subdir != "" {
			keys["subdir"] = m.Subdir
		}
		b.WriteString("::")
	} else if m.Subdir != "" {
		keys["subdir"] = m.Subdir
	}
	b.WriteString(m.Name)
	exact := false
	if m.Version != nil {
		if v, ok := m.Version.exact(); ok {
			b.WriteString("==" + v.String())
			exact = true
		} else if v, ok := m.Version.prefix(); ok {
			b.WriteString("=" + v.String())
		} else {
			keys["version"] = m.Version.String()
		}
	}
	if m.Build != "" {
		if exact && plainBuild(m.Build) {
			b.WriteString("=" + m.Build)
		} else {
			keys["build"] = m.Build
		}
	}
	if m.BuildNumber != nil {
		keys["build_number"] = m.BuildNumber.String()
	}
	if m.MD5 != "" {
		keys["md5"] = m.MD5
	}
	if m.SHA256 != "" {
		keys["sha256"] = m.SHA256
	}
	if m.FileName != "" {
		keys["fn"] = m.FileName
	}
	if len(keys) > 0 {
		b.WriteByte('[')
		for i, k := range sortedKeys(keys) {
			if i > 0 {
				b.WriteByte(',')
			}
			q := "'"
			if strings.Contains(keys[k], "'") {
				q = `"`
			}
			b.WriteString(k + "=" + q + keys[k] + q)
		}
		b.WriteByte(']')
	}
	return b.String()
}

// plainBuild reports whether a build string can be written positionally
// ("name==1.0=build") and read back unchanged.
func plainBuild(b string) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '+') {
			return false
		}
	}
	return b != ""
}
