package wheel

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// EntryPoint is one entry of entry_points.txt.
type EntryPoint struct {
	Group  string // e.g. "console_scripts"
	Name   string
	Module string // "pkg.cli"
	Attr   string // "main" or "Class.method"; "" for a module reference
}

var dotted = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// ParseEntryPoints reads an entry_points.txt (an INI file: [group] sections
// of name = module:attr [extras] lines). Entries are returned sorted by
// group and name.
func ParseEntryPoints(b []byte) ([]EntryPoint, error) {
	var out []EntryPoint
	group := ""
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), maxMetaFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("entry_points.txt line %d: unterminated section %q", n, line)
			}
			group = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		name, ref, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("entry_points.txt line %d: %q is not name = object reference", n, line)
		}
		if group == "" {
			return nil, fmt.Errorf("entry_points.txt line %d: entry outside a [group]", n)
		}
		name, ref = strings.TrimSpace(name), strings.TrimSpace(ref)
		if i := strings.Index(ref, "["); i >= 0 {
			ref = strings.TrimSpace(ref[:i]) // extras do not change the launcher
		}
		mod, attr, _ := strings.Cut(ref, ":")
		mod, attr = strings.TrimSpace(mod), strings.TrimSpace(attr)
		if !dotted.MatchString(mod) || attr != "" && !dotted.MatchString(attr) {
			return nil, fmt.Errorf("entry_points.txt line %d: %q is not an object reference (module:attr)", n, ref)
		}
		if name == "" {
			return nil, fmt.Errorf("entry_points.txt line %d: empty name", n)
		}
		if seen[group+"\x00"+name] {
			continue // the first definition wins, as importlib.metadata reads it
		}
		seen[group+"\x00"+name] = true
		out = append(out, EntryPoint{Group: group, Name: name, Module: mod, Attr: attr})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("entry_points.txt: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// shebang is the first line(s) running a script with python (plus args).
// Kernels cut "#!" lines at 127 bytes and split no arguments on spaces, so
// a long or spaced interpreter path goes through /bin/sh, which re-executes
// the file with python; python then reads the sh line as a string literal.
func shebang(python, args string) string {
	if len(python)+len(args)+2 <= 127 && !strings.ContainsAny(python, " \t") {
		return "#!" + python + args + "\n"
	}
	q := "'" + strings.ReplaceAll(python, "'", `'\''`) + "'"
	return "#!/bin/sh\n'''exec' " + q + args + ` "$0" "$@"` + "\n' '''\n"
}

// launcher is the script of a console or GUI entry point.
func launcher(ep EntryPoint, python, installer string) []byte {
	var b strings.Builder
	b.WriteString(shebang(python, ""))
	fmt.Fprintf(&b, "# %s entry point %q, written by %s.\n", ep.Group, ep.Name, installer)
	b.WriteString("import sys\n\n")
	top, rest, _ := strings.Cut(ep.Attr, ".")
	call := top
	if rest != "" {
		call += "." + rest
	}
	fmt.Fprintf(&b, "from %s import %s\n\nif __name__ == \"__main__\":\n    sys.exit(%s())\n", ep.Module, top, call)
	return []byte(b.String())
}
