package wheel

import (
	"fmt"
	"regexp"
	"strings"
)

// Tag is one compatibility tag of a wheel (PEP 425).
type Tag struct {
	Interpreter string // e.g. "cp311", "py3"
	ABI         string // e.g. "cp311", "abi3", "none"
	Platform    string // e.g. "manylinux_2_17_x86_64", "any"
}

func (t Tag) String() string { return t.Interpreter + "-" + t.ABI + "-" + t.Platform }

var (
	nameSep    = regexp.MustCompile(`[-_.]+`)
	validName  = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?$`)
	validBuild = regexp.MustCompile(`^[0-9][A-Za-z0-9_.]*$`)
	validTag   = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	// version as it appears in a file name: no '-' (PEP 427 escapes it)
	validVersion = regexp.MustCompile(`^[A-Za-z0-9_.!+]+$`)
)

// Normalize is the PEP 503 normalized form of a project name: lower case,
// runs of '-', '_' and '.' replaced by one '-'.
func Normalize(name string) string {
	return strings.ToLower(nameSep.ReplaceAllString(name, "-"))
}

// ParseFilename splits a wheel file name
// "{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl" and expands
// its compressed tag sets ("py2.py3-none-any" is two tags). The returned
// name is normalized (PEP 503).
func ParseFilename(filename string) (name, version, build string, tags []Tag, err error) {
	stem, ok := strings.CutSuffix(filename, ".whl")
	if !ok {
		return "", "", "", nil, fmt.Errorf("wheel file name %q does not end in .whl", filename)
	}
	if strings.ContainsAny(stem, "/\\") {
		return "", "", "", nil, fmt.Errorf("wheel file name %q holds a path separator", filename)
	}
	parts := strings.Split(stem, "-")
	switch len(parts) {
	case 5:
	case 6:
		build = parts[2]
		if !validBuild.MatchString(build) {
			return "", "", "", nil, fmt.Errorf("wheel file name %q: build tag %q must start with a digit", filename, build)
		}
	default:
		return "", "", "", nil, fmt.Errorf("wheel file name %q: want name-version[-build]-python-abi-platform.whl", filename)
	}
	if !validName.MatchString(parts[0]) {
		return "", "", "", nil, fmt.Errorf("wheel file name %q: %q is not a project name", filename, parts[0])
	}
	if !validVersion.MatchString(parts[1]) {
		return "", "", "", nil, fmt.Errorf("wheel file name %q: %q is not a version", filename, parts[1])
	}
	n := len(parts)
	pys, abis, plats := strings.Split(parts[n-3], "."), strings.Split(parts[n-2], "."), strings.Split(parts[n-1], ".")
	for _, set := range [][]string{pys, abis, plats} {
		for _, t := range set {
			if !validTag.MatchString(t) {
				return "", "", "", nil, fmt.Errorf("wheel file name %q: %q is not a compatibility tag", filename, t)
			}
		}
	}
	if len(pys)*len(abis)*len(plats) > 4096 {
		return "", "", "", nil, fmt.Errorf("wheel file name %q: too many compatibility tags", filename)
	}
	for _, py := range pys {
		for _, abi := range abis {
			for _, p := range plats {
				tags = append(tags, Tag{py, abi, p})
			}
		}
	}
	return Normalize(parts[0]), parts[1], build, tags, nil
}

// escapeName is a name as it appears in file and directory names of a
// wheel: runs of '-', '_' and '.' become '_' (the binary distribution
// format spec). Comparison is case-insensitive.
func escapeName(name string) string {
	return nameSep.ReplaceAllString(name, "_")
}
