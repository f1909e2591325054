package pip

import (
	"fmt"
	"strconv"
	"strings"
)

// Target is the interpreter and platform the wheels are for.
type Target struct {
	// Platform is a conda subdir: linux-64, linux-aarch64, linux-ppc64le,
	// linux-s390x, osx-64, osx-arm64, win-64, noarch.
	Platform string
	// Glibc is the target's glibc version (the __glibc virtual package),
	// e.g. "2.28"; manylinux wheels up to it are accepted. Default 2.17.
	Glibc string
	// MacOS is the target's macOS version (the __osx virtual package);
	// default 11.0, the conda engine's default.
	MacOS string
	// PythonVersion is major.minor, e.g. "3.11".
	PythonVersion string
	// Implementation is the interpreter tag prefix; default "cp".
	Implementation string
	// ABI; default Implementation + the version's digits ("cp311").
	ABI string
}

var linuxArch = map[string]string{
	"linux-64": "x86_64", "linux-aarch64": "aarch64", "linux-ppc64le": "ppc64le",
	"linux-s390x": "s390x", "linux-32": "i686", "linux-armv7l": "armv7l",
}

// normalized fills the defaults and checks the fields.
func (t Target) normalized() (Target, error) {
	maj, min, ok := strings.Cut(t.PythonVersion, ".")
	if _, err := strconv.Atoi(maj); !ok || err != nil || maj == "" {
		return t, fmt.Errorf("target python version %q is not major.minor", t.PythonVersion)
	}
	if _, err := strconv.Atoi(min); err != nil || strings.Contains(min, ".") {
		return t, fmt.Errorf("target python version %q is not major.minor", t.PythonVersion)
	}
	if t.Implementation == "" {
		t.Implementation = "cp"
	}
	if !isTagWord(t.Implementation) {
		return t, fmt.Errorf("target implementation %q is not a tag", t.Implementation)
	}
	if t.ABI == "" {
		t.ABI = t.Implementation + maj + min
	}
	if !isTagWord(t.ABI) {
		return t, fmt.Errorf("target ABI %q is not a tag", t.ABI)
	}
	return t, nil
}

func isTagWord(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// parseMajorMinor reads "2.28", "2.28.1" or a virtual package's
// "version=build" such as "2.28=0".
func parseMajorMinor(s string) (int, int, error) {
	v, _, _ := strings.Cut(s, "=")
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return 0, 0, fmt.Errorf("%q is not major.minor", s)
	}
	a, err1 := strconv.Atoi(parts[0])
	b, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || a < 0 || b < 0 || a > 1000 || b > 1000 {
		return 0, 0, fmt.Errorf("%q is not major.minor", s)
	}
	return a, b, nil
}

// PlatformTags are the wheel platform tags the target accepts, most
// specific first, as pip's --platform options. For Linux they are the
// manylinux tags from the target's glibc down to the oldest one of the
// architecture (with the legacy manylinux1/2010/2014 aliases), then
// linux_<arch>; for macOS one tag, which pip widens to older versions and
// universal builds itself; "any" always comes last.
func (t Target) PlatformTags() ([]string, error) {
	if t.Platform == "noarch" {
		return []string{"any"}, nil
	}
	if arch, ok := linuxArch[t.Platform]; ok {
		glibc := t.Glibc
		if glibc == "" {
			glibc = "2.17"
		}
		maj, min, err := parseMajorMinor(glibc)
		if err != nil || maj != 2 {
			return nil, fmt.Errorf("target glibc %q is not a 2.x version", glibc)
		}
		oldest := 17 // manylinux2014 is the first for the newer architectures
		if arch == "x86_64" || arch == "i686" {
			oldest = 5
		}
		var tags []string
		for m := min; m >= oldest; m-- {
			tags = append(tags, fmt.Sprintf("manylinux_2_%d_%s", m, arch))
			switch m {
			case 17:
				tags = append(tags, "manylinux2014_"+arch)
			case 12:
				tags = append(tags, "manylinux2010_"+arch)
			case 5:
				tags = append(tags, "manylinux1_"+arch)
			}
		}
		return append(tags, "linux_"+arch, "any"), nil
	}
	switch t.Platform {
	case "osx-64", "osx-arm64":
		arch := "x86_64"
		if t.Platform == "osx-arm64" {
			arch = "arm64"
		}
		v := t.MacOS
		if v == "" {
			v = "11.0"
		}
		maj, min, err := parseMajorMinor(v)
		if err != nil {
			return nil, fmt.Errorf("target macOS %q: %w", v, err)
		}
		if maj >= 11 {
			min = 0 // wheels name macOS 11+ by major version only
		}
		if arch == "arm64" && maj < 11 {
			maj, min = 11, 0 // the first macOS on arm64
		}
		return []string{fmt.Sprintf("macosx_%d_%d_%s", maj, min, arch), "any"}, nil
	case "win-64":
		return []string{"win_amd64", "any"}, nil
	case "win-32":
		return []string{"win32", "any"}, nil
	case "win-arm64":
		return []string{"win_arm64", "any"}, nil
	}
	return nil, fmt.Errorf("platform %q has no pip platform tags (want linux-64, linux-aarch64, osx-arm64, win-64, ...)", t.Platform)
}
