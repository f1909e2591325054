package install

import (
	"fmt"
	"path"
	"strings"
)

// pythonLayout is where noarch: python packages go, taken from the python
// package of the environment.
type pythonLayout struct {
	Version      string // X.Y
	SitePackages string // relative to the prefix, e.g. lib/python3.11/site-packages
}

// newPythonLayout derives the layout from the python record's version and
// its python_site_packages_path (CEP 17), if any.
func newPythonLayout(version, sitePackagesPath string) (*pythonLayout, error) {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 || !digits(parts[0]) || !digits(leadingDigits(parts[1])) {
		return nil, fmt.Errorf("python version %q has no major.minor", version)
	}
	xy := parts[0] + "." + leadingDigits(parts[1])
	sp := "lib/python" + xy + "/site-packages"
	if sitePackagesPath != "" {
		sp = strings.TrimSuffix(sitePackagesPath, "/")
		if !validRelPath(sp) {
			return nil, fmt.Errorf("python_site_packages_path %q is not a relative path inside the prefix", sitePackagesPath)
		}
	}
	return &pythonLayout{Version: xy, SitePackages: sp}, nil
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func leadingDigits(s string) string {
	for i, c := range s {
		if c < '0' || c > '9' {
			return s[:i]
		}
	}
	return s
}

// noarchPythonPath maps a path of a noarch: python package to where it is
// installed.
func (l *pythonLayout) noarchPythonPath(p string) string {
	if rest, ok := strings.CutPrefix(p, "site-packages/"); ok {
		return l.SitePackages + "/" + rest
	}
	if rest, ok := strings.CutPrefix(p, "python-scripts/"); ok {
		return "bin/" + rest
	}
	return p
}

// interpreter is the prefix-relative path of the versioned interpreter.
func (l *pythonLayout) interpreter() string { return "bin/python" + l.Version }

// entryPoint is one parsed `cmd = module:function` of link.json.
type entryPoint struct {
	Command  string
	Module   string
	Function string // may be dotted: Class.method
}

// parseEntryPoint reads `cmd = pkg.mod:func`. Every part is checked, since
// the command becomes a file name and the rest Python source.
func parseEntryPoint(s string) (entryPoint, error) {
	cmd, target, ok := strings.Cut(s, "=")
	if !ok {
		return entryPoint{}, fmt.Errorf("entry point %q: want `command = module:function`", s)
	}
	cmd, target = strings.TrimSpace(cmd), strings.TrimSpace(target)
	// Extras such as `[gui]` after the target mean nothing to conda.
	if i := strings.IndexByte(target, '['); i >= 0 {
		target = strings.TrimSpace(target[:i])
	}
	mod, fn, ok := strings.Cut(target, ":")
	if !ok {
		return entryPoint{}, fmt.Errorf("entry point %q: want `command = module:function`", s)
	}
	mod, fn = strings.TrimSpace(mod), strings.TrimSpace(fn)
	if cmd == "" || cmd == "." || cmd == ".." || strings.ContainsAny(cmd, "/\\\x00\n\r\t ") {
		return entryPoint{}, fmt.Errorf("entry point %q: command %q is not a plain file name", s, cmd)
	}
	if !dottedName(mod) || !dottedName(fn) {
		return entryPoint{}, fmt.Errorf("entry point %q: module and function must be dotted Python names", s)
	}
	return entryPoint{Command: cmd, Module: mod, Function: fn}, nil
}

func dottedName(s string) bool {
	if s == "" {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" || part[0] >= '0' && part[0] <= '9' {
			return false
		}
		for _, c := range part {
			if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return false
			}
		}
	}
	return true
}

// script is the bin/<command> launcher: the interpreter's shebang (fixed
// like any other when too long), then code that imports the function and
// exits with its result, after dropping the suffixes Windows launchers add to
// argv[0] so that programs see their plain name.
func (e entryPoint) script(interpreter string, prefix string) []byte {
	head, _, _ := strings.Cut(e.Function, ".")
	var b strings.Builder
	b.WriteString("#!" + interpreter + "\n")
	b.WriteString("# -*- coding: utf-8 -*-\n")
	b.WriteString("import re\nimport sys\n\n")
	fmt.Fprintf(&b, "from %s import %s\n\n", e.Module, head)
	b.WriteString("if __name__ == '__main__':\n")
	b.WriteString("    sys.argv[0] = re.sub(r'(-script\\.pyw?|\\.exe)?$', '', sys.argv[0])\n")
	fmt.Fprintf(&b, "    sys.exit(%s())\n", e.Function)
	return fixShebang([]byte(b.String()), prefix)
}

// linkScript reports whether p is a conda link script of the package
// (bin/.<name>-<action>.sh) that a conda client would run.
func linkScript(p, name string) bool {
	rest, ok := strings.CutPrefix(p, "bin/."+name+"-")
	if !ok {
		return false
	}
	switch rest {
	case "pre-link.sh", "post-link.sh", "pre-unlink.sh":
		return true
	}
	return false
}

// validRelPath reports whether p is a clean, slash-separated, relative path
// that stays below the prefix.
func validRelPath(p string) bool {
	if p == "" || p == "." || strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	if path.Clean(p) != p {
		return false
	}
	return p != ".." && !strings.HasPrefix(p, "../")
}
