package install

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
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
	all, opts := layoutEnv(t, filepath.Join(work, "pkgs"))
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
	got, want := treeShape(t, tree), shapeOf(t, env)
	if got != want {
		t.Fatalf("layout:\n%s\n----\ninstalled tree:\n%s", got, want)
	}
	if tree.Report.Files != rep.Files || tree.Report.Bytes != rep.Bytes || tree.Report.Patched != rep.Patched {
		t.Errorf("layout report %+v, install report %+v", tree.Report, *rep)
	}
	// Only what had to be written is below gen: the patched files, the
	// entry points and the files whose mode changes. A no_link file is
	// not written: it is only never hardlinked, and a layout links nothing.
	wantWritten := "bin/group-exec bin/hello bin/hello-x bin/python3.11 bin/tool share/tool/data.bin share/tool/group-writable.txt"
	if w := writtenBelow(gen); w != wantWritten {
		t.Errorf("layout wrote %v, want %s", w, wantWritten)
	}
}

// layoutEnv is the environment of TestDeterministic, plus python, a
// noarch: python package with entry points, and a package with patched
// files, a no_link file and extracted files whose modes an install
// changes.
func layoutEnv(t *testing.T, pkgs string) ([]Package, Options) {
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
	return all, Options{TargetPrefix: "/opt/conda", History: "sparkenv build env.hcl", AllowHardlinks: true}
}

// treeShape is shapeOf for a layout: each entry, with the mode and bytes
// of its source for a file.
func treeShape(t *testing.T, tree *Tree) string {
	t.Helper()
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
	return strings.Join(lines, "\n")
}

// writtenBelow lists the files below dir outside conda-meta.
func writtenBelow(dir string) string {
	var written []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			if !strings.HasPrefix(rel, "conda-meta") {
				written = append(written, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	sort.Strings(written)
	return strings.Join(written, " ")
}

// TestLayoutCache lays the environment of TestLayoutMatchesInstall out
// with a layout cache: empty, full, with damaged entries, for another
// prefix and without hardlinks. Every time the tree (conda-meta included)
// is the one a layout without the cache gives, a full cache leaves
// nothing to write but conda-meta, and damaged entries are made again.
func TestLayoutCache(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	all, opts := layoutEnv(t, filepath.Join(work, "pkgs"))
	cache := filepath.Join(work, "cache")
	n := 0
	layout := func(opts Options) (*Tree, string) {
		t.Helper()
		n++
		gen := filepath.Join(work, fmt.Sprint("gen", n))
		tree, err := Layout(context.Background(), gen, all, opts)
		if err != nil {
			t.Fatal(err)
		}
		return tree, gen
	}
	entries := func() []string {
		recs, _ := filepath.Glob(filepath.Join(cache, "*", "*", "record"))
		return recs
	}
	for _, variant := range []Options{opts, {TargetPrefix: "/srv/env", History: opts.History}} {
		plain, _ := layout(variant)
		want := treeShape(t, plain)
		variant.LayoutCache = cache
		before := len(entries())
		cold, _ := layout(variant)
		if got := treeShape(t, cold); got != want {
			t.Fatalf("%s, empty cache:\n%s\n----\nwithout cache:\n%s", variant.TargetPrefix, got, want)
		}
		// Every package whose paths were all installed is kept; liba,
		// whose etc/conf libb replaces, is not.
		if got, want := len(entries())-before, len(all)-1; got != want {
			t.Errorf("%s: %d packages cached, want %d", variant.TargetPrefix, got, want)
		}
		warm, gen := layout(variant)
		if got := treeShape(t, warm); got != want {
			t.Fatalf("%s, full cache:\n%s\n----\nwithout cache:\n%s", variant.TargetPrefix, got, want)
		}
		if warm.Report.Files != plain.Report.Files || warm.Report.Bytes != plain.Report.Bytes ||
			warm.Report.Patched != plain.Report.Patched || warm.Report.Linked != plain.Report.Linked {
			t.Errorf("%s: report %+v from the cache, %+v without", variant.TargetPrefix, warm.Report, plain.Report)
		}
		// Files of clobbered packages are written; the rest come from the
		// cache, conda-meta records included.
		if w := writtenBelow(gen); strings.Contains(w, "bin/tool") || strings.Contains(w, "bin/hello") {
			t.Errorf("%s: a layout from a full cache wrote %s", variant.TargetPrefix, w)
		}
		if meta, _ := filepath.Glob(filepath.Join(gen, "conda-meta", "*.json")); len(meta) > 0 {
			t.Errorf("%s: a layout with a cache wrote %v", variant.TargetPrefix, meta)
		}
	}
	// liba is cached from an environment where it installs every path,
	// then read back into one where libb replaces its etc/conf: that path
	// is not installed, and its conda-meta record says so.
	{
		var noB []Package
		for _, p := range all {
			if p.Record.Name != "libb" && p.Record.Name != "libc" {
				noB = append(noB, p)
			}
		}
		fresh := filepath.Join(work, "cache-clobber")
		o := opts
		o.LayoutCache = fresh
		if _, err := Layout(context.Background(), filepath.Join(work, "gen-nob"), noB, o); err != nil {
			t.Fatal(err)
		}
		plain, _ := layout(opts)
		warm, _ := layout(o)
		if got, want := treeShape(t, warm), treeShape(t, plain); got != want {
			t.Fatalf("liba from the cache, replaced by libb:\n%s\n----\nwithout cache:\n%s", got, want)
		}
		// And the other way round: requested specs and records changed.
		changed := slices.Clone(all)
		changed[1].RequestedSpec = "liba >=1"
		changed[1].Record.Depends = []string{"libz"}
		plainAll := all
		all = changed
		plain, _ = layout(opts)
		warm, _ = layout(o)
		all = plainAll
		if got, want := treeShape(t, warm), treeShape(t, plain); got != want {
			t.Fatalf("changed spec and record, from the cache:\n%s\n----\nwithout cache:\n%s", got, want)
		}
	}

	// Without hardlinks the conda-meta link type changes; the cache
	// entries made with them serve.
	noLinks := opts
	noLinks.AllowHardlinks = false
	plain, _ := layout(noLinks)
	noLinks.LayoutCache = cache
	if got, want := treeShape(t, func() *Tree { tr, _ := layout(noLinks); return tr }()), treeShape(t, plain); got != want {
		t.Fatalf("without hardlinks, from the cache:\n%s\n----\nwithout cache:\n%s", got, want)
	}

	// Damage: a record cut short, one with a byte changed, and a file of
	// an entry removed. Each is seen, left alone and made again.
	cache = filepath.Join(work, "cache2")
	opts.LayoutCache = cache
	layout(opts)
	damaged := map[string]string{}
	for _, rec := range entries() {
		b, err := os.ReadFile(rec)
		if err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(filepath.Dir(rec), "files", "*"))
		switch {
		case len(damaged) == 0:
			os.WriteFile(rec, b[:len(b)/2], 0o644)
		case len(damaged) == 1:
			b[len(b)/3] ^= 0x20
			os.WriteFile(rec, b, 0o644)
		case len(files) > 0 && len(damaged) == 2:
			os.Remove(files[0])
		default:
			continue
		}
		damaged[rec] = string(b)
	}
	if len(damaged) != 3 {
		t.Fatalf("damaged %d entries, want 3", len(damaged))
	}
	plainOpts := opts
	plainOpts.LayoutCache = ""
	plain, _ = layout(plainOpts)
	again, _ := layout(opts)
	if got, want := treeShape(t, again), treeShape(t, plain); got != want {
		t.Fatalf("damaged cache:\n%s\n----\nwithout cache:\n%s", got, want)
	}
	for rec := range damaged {
		dir := filepath.Dir(rec)
		ok := false
		for _, p := range all {
			if _, items, good := readRecord(dir, filepath.Clean(p.Dir)); good && len(items) > 0 {
				ok = true
			}
		}
		if !ok {
			t.Errorf("damaged entry %s not made again", dir)
		}
	}

	// Layouts storing the same entries at once, and one reading them
	// meanwhile, all give the tree.
	shared := opts
	shared.LayoutCache = filepath.Join(work, "cache-shared")
	want := treeShape(t, plain)
	var wg sync.WaitGroup
	trees := make([]*Tree, 4)
	for k := range trees {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr, err := Layout(context.Background(), filepath.Join(work, fmt.Sprint("gen-shared", k)), all, shared)
			if err != nil {
				t.Error(err)
				return
			}
			trees[k] = tr
		}()
	}
	wg.Wait()
	for k, tr := range append(trees, func() *Tree { tr, _ := layout(shared); return tr }()) {
		if tr == nil {
			continue
		}
		if got := treeShape(t, tr); got != want {
			t.Fatalf("layout %d sharing a cache:\n%s\n----\nwithout cache:\n%s", k, got, want)
		}
	}

	// Modes, which an image takes from the files it names: entries whose
	// files lost theirs, and a package directory restored with other
	// modes, are not trusted; the packages are laid out again.
	written, _ := filepath.Glob(filepath.Join(cache, "*", "*", "files", "*"))
	if len(written) == 0 {
		t.Fatal("no files in the cache entries")
	}
	for _, f := range written {
		os.Chmod(f, 0o600)
	}
	hello := all[len(all)-1]
	filepath.WalkDir(hello.Dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.Contains(p, "/info/") {
			os.Chmod(p, 0o600)
		}
		return nil
	})
	plain, _ = layout(plainOpts)
	for i := 0; i < 2; i++ { // the first layout makes the entries again, the second reads them
		again, _ = layout(opts)
		if got, want := treeShape(t, again), treeShape(t, plain); got != want {
			t.Fatalf("cache with changed modes (layout %d):\n%s\n----\nwithout cache:\n%s", i, got, want)
		}
	}
	for _, f := range written {
		if fi, err := os.Stat(f); err == nil && fi.Mode().Perm() == 0o600 {
			t.Errorf("%s: entry with a changed mode not made again", f)
		}
	}
}

// stdJSON is what encodeJSON must write: encoding/json with sorted map
// keys, two-space indentation and no HTML escaping.
func stdJSON(t testing.TB, v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestEncodeJSON checks the conda-meta encoder against encoding/json: on
// every record of an environment and on values with escapes, empty and
// nil lists, nested maps and absent fields.
func TestEncodeJSON(t *testing.T) {
	all, opts := layoutEnv(t, t.TempDir())
	in, _, err := prepare(context.Background(), all, opts, opts.TargetPrefix, true)
	if err != nil {
		t.Fatal(err)
	}
	var values []any
	for _, ps := range in.pkgs {
		values = append(values, in.prefixRecord(ps))
	}
	n := int64(7)
	values = append(values,
		map[string]any{}, map[string]any{"a": []string{}, "b": []string(nil), "c": nil, "d": map[string]any{}},
		map[string]any{"s": "quote \" backslash \\ <&> \b\f\n\r\t\x00\x1f\x7f é \u2028\u2029 \xff\xfe end",
			"n": -3, "i64": int64(1) << 40, "t": true, "f": false,
			"p": []pathRec{{Path: "a b", PathType: "hardlink"}, {Path: "x", FileMode: "text", NoLink: true, PathType: "softlink",
				PrefixPlaceholder: "/ph", SHA256: "00", SHA256InPrefix: "11", Size: &n}},
			"empty": []pathRec{}, "nested": map[string]any{"z": []string{"1", ""}, "a": map[string]any{"k": 1}}},
	)
	for _, v := range values {
		got, err := encodeJSON(v, 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := stdJSON(t, v); string(got) != want {
			t.Errorf("encodeJSON:\n%s\nencoding/json:\n%s", got, want)
		}
	}
}

func FuzzEncodeJSON(f *testing.F) {
	for _, s := range []string{"plain", "q\"\\", "\x00\x1f\b", "\u2028é\xff", ""} {
		f.Add(s, s+"x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		n := int64(len(b))
		v := map[string]any{a: b, b: []string{a, b}, "p": []pathRec{{Path: a, PathType: b, PrefixPlaceholder: a, Size: &n}}}
		got, err := encodeJSON(v, 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := stdJSON(t, v); string(got) != want {
			t.Fatalf("encodeJSON:\n%q\nencoding/json:\n%q", got, want)
		}
	})
}

// TestTreeAdd checks the merge of Add against a plain rule: later entries
// replace earlier ones at the same path, except a directory over a
// directory, and the result is sorted.
func TestTreeAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "a/b", "a-b", "a/b/c", "b", "b/x.pyc", "c", "a/__pycache__", "a/__pycache__/m.pyc"}
	entry := func(tag string) Entry {
		e := Entry{Path: names[rng.IntN(len(names))], Type: EntryType(rng.IntN(3)), Source: tag}
		return e
	}
	for round := 0; round < 500; round++ {
		var base []Entry
		seen := map[string]bool{}
		for i := 0; i < rng.IntN(6); i++ {
			if e := entry(fmt.Sprint("old", i)); !seen[e.Path] {
				seen[e.Path] = true
				base = append(base, e)
			}
		}
		slices.SortFunc(base, byPath)
		var add []Entry
		for i := 0; i < rng.IntN(8); i++ {
			add = append(add, entry(fmt.Sprint("new", i)))
		}
		want := map[string]Entry{}
		for _, e := range base {
			want[e.Path] = e
		}
		for _, e := range add {
			if prev, ok := want[e.Path]; ok && prev.Type == EntryDir && e.Type == EntryDir {
				continue
			}
			want[e.Path] = e
		}
		tree := &Tree{Entries: slices.Clone(base)}
		tree.Add(add)
		if !slices.IsSortedFunc(tree.Entries, byPath) || len(tree.Entries) != len(want) {
			t.Fatalf("base %v + %v = %v, want %v", base, add, tree.Entries, want)
		}
		for _, e := range tree.Entries {
			if want[e.Path] != e {
				t.Fatalf("base %v + %v: %v, want %v", base, add, e, want[e.Path])
			}
		}
	}
}

// TestSortRuns checks the run merge against a plain sort, runs of every
// length, sorted or not, empty ones included.
func TestSortRuns(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 300; round++ {
		var entries []Entry
		starts := []int{0}
		for r := rng.IntN(9); r > 0; r-- {
			n := rng.IntN(6)
			for i := 0; i < n; i++ {
				entries = append(entries, Entry{Path: fmt.Sprintf("p%03d", rng.IntN(200))})
			}
			if rng.IntN(2) == 0 {
				slices.SortFunc(entries[starts[len(starts)-1]:], byPath)
			}
			starts = append(starts, len(entries))
		}
		starts = starts[:len(starts)-1]
		want := slices.Clone(entries)
		slices.SortStableFunc(want, byPath)
		got := sortRuns(slices.Clone(entries), starts)
		if !slices.EqualFunc(got, want, func(a, b Entry) bool { return a.Path == b.Path }) {
			t.Fatalf("runs %v of %v: %v, want %v", starts, entries, got, want)
		}
	}
}
