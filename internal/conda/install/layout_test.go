package install

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// shapeOf lists every path below root with its type, permission bits and
// content digest or link target: the tree as an image would hold it, with
// no times.
func shapeOf(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		lines = append(lines, shapeLine(t, filepath.ToSlash(rel), fi.Mode(), p))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func shapeLine(t *testing.T, rel string, mode fs.FileMode, p string) string {
	t.Helper()
	switch {
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%s l -> %s", rel, target)
	case mode.IsDir():
		return fmt.Sprintf("%s d %o", rel, mode.Perm())
	default:
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%s f %o %s", rel, mode.Perm(), sha256Of(string(b)))
	}
}

// TestLayoutMatchesInstall lays out the environment of TestDeterministic,
// plus a package whose extracted files have modes an install changes, and
// checks that reading the layout's sources gives the installed tree: the
// same paths, modes, bytes and links, conda-meta included.
func TestLayoutMatchesInstall(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	pkgs := filepath.Join(work, "pkgs")
	all := linksDirsClobberPkgs(t, pkgs)
	ph := placeholder255()
	all = append(all, makePkg(t, pkgs, pkgSpec{name: "tool", files: []fileSpec{
		{path: "bin/tool", exec: true, placeholder: ph, data: "#!" + ph + "/bin/perl -w\nprint 1\n"},
		{path: "share/tool/data.bin", placeholder: ph, binary: true, data: "\x00" + ph + "/x\x00rest"},
		{path: "share/tool/group-writable.txt", data: "rw-rw-r--\n"},
		{path: "bin/group-exec", exec: true, data: "#!/bin/sh\n"},
		{path: "share/tool/nolink.txt", data: "copied\n", noLink: true},
	}}))
	tool := all[len(all)-1].Dir
	for name, mode := range map[string]fs.FileMode{"share/tool/group-writable.txt": 0o664, "bin/group-exec": 0o775} {
		if err := os.Chmod(filepath.Join(tool, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	py := pythonPkg(t, pkgs, "/usr/bin/python3")
	all = append([]Package{py}, append(all, noarchHello(t, pkgs))...)
	opts := Options{TargetPrefix: "/opt/conda", History: "sparkenv build env.hcl", AllowHardlinks: true}

	env := filepath.Join(work, "env")
	rep, err := Install(context.Background(), env, all, opts)
	if err != nil {
		t.Fatal(err)
	}
	gen := filepath.Join(work, "gen")
	tree, err := Layout(context.Background(), gen, all, opts)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range tree.Entries {
		switch e.Type {
		case EntryDir:
			lines = append(lines, fmt.Sprintf("%s d %o", e.Path, e.Mode))
		case EntrySymlink:
			lines = append(lines, fmt.Sprintf("%s l -> %s", e.Path, e.Target))
		default:
			fi, err := os.Lstat(e.Source)
			if err != nil {
				t.Fatal(err)
			}
			if !fi.Mode().IsRegular() || fi.Mode().Perm() != e.Mode {
				t.Errorf("%s: source %s has mode %s, entry %o", e.Path, e.Source, fi.Mode(), e.Mode)
			}
			line := shapeLine(t, e.Path, fi.Mode(), e.Source)
			lines = append(lines, line)
			if e.SHA256 != "" && !strings.HasSuffix(line, " "+e.SHA256) {
				t.Errorf("%s: entry digest %s, source %s", e.Path, e.SHA256, line)
			}
		}
	}
	got, want := strings.Join(lines, "\n"), shapeOf(t, env)
	if got != want {
		t.Fatalf("layout:\n%s\n----\ninstalled tree:\n%s", got, want)
	}
	if tree.Report.Files != rep.Files || tree.Report.Bytes != rep.Bytes || tree.Report.Patched != rep.Patched {
		t.Errorf("layout report %+v, install report %+v", tree.Report, *rep)
	}
	// Only what had to be written is below gen: the patched files, the
	// entry points and the files whose mode changes. A no_link file is
	// not written: it is only never hardlinked, and a layout links nothing.
	var written []string
	filepath.WalkDir(gen, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(gen, p)
			if !strings.HasPrefix(rel, "conda-meta") {
				written = append(written, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	sort.Strings(written)
	wantWritten := "bin/group-exec bin/hello bin/hello-x bin/python3.11 bin/tool share/tool/data.bin share/tool/group-writable.txt"
	if strings.Join(written, " ") != wantWritten {
		t.Errorf("layout wrote %v, want %s", written, wantWritten)
	}
}

// TestIndentJSON checks the single-pass indenter against json.Indent on
// documents with every kind of value, escapes and empty containers.
func TestIndentJSON(t *testing.T) {
	docs := []string{
		`{}`, `[]`, `{"a":[]}`, `{"a":{},"b":[1,2,{"c":"d"}]}`,
		`{"s":"quote \" and backslash \\ and {[,:]} inside","n":-1.5e3,"t":true,"f":false,"z":null}`,
		`[[],[[]],{"x":[{}]}]`, `{"unicode":"é\u2028\u0000"}`,
	}
	for _, d := range docs {
		var want bytes.Buffer
		if err := json.Indent(&want, []byte(d), "", "  "); err != nil {
			t.Fatal(err)
		}
		if got := indentJSON(nil, []byte(d)); string(got) != want.String() {
			t.Errorf("%s:\n%s\nwant:\n%s", d, got, want.String())
		}
	}
}

func FuzzIndentJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,{"b":"c\"}"}],"d":{}}`, `[[],{},""]`, `"x"`, `1`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var c bytes.Buffer
		if json.Compact(&c, []byte(s)) != nil {
			return
		}
		var want bytes.Buffer
		if err := json.Indent(&want, c.Bytes(), "", "  "); err != nil {
			t.Fatal(err)
		}
		if got := indentJSON(nil, c.Bytes()); string(got) != want.String() {
			t.Fatalf("%q:\n%s\nwant:\n%s", c.String(), got, want.String())
		}
	})
}
