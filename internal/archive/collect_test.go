package archive

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func paths(es []Entry) []string {
	var out []string
	for _, e := range es {
		p := e.Path
		switch {
		case e.IsDir():
			p += "/"
		case e.IsSymlink():
			p += "@"
		}
		out = append(out, p)
	}
	return out
}

func TestCollect(t *testing.T) {
	t.Parallel()
	root := makeTree(t)
	cases := []struct {
		name string
		opts CollectOptions
		want []string
	}{
		{
			name: "everything",
			opts: CollectOptions{},
			want: []string{"big/", "big/blob.bin", "bin/", "bin/run.sh", "donn\u00e9es/", "donn\u00e9es/\u00e9.txt", "empty/",
				"lib/", "lib/a.txt", "lib/very-long-directory-name/", "lib/very-long-directory-name/very-long-directory-name/",
				"lib/very-long-directory-name/very-long-directory-name/very-long-directory-name/",
				"lib/very-long-directory-name/very-long-directory-name/very-long-directory-name/very-long-directory-name/",
				"lib/very-long-directory-name/very-long-directory-name/very-long-directory-name/very-long-directory-name/very-long-directory-name/",
				"lib/very-long-directory-name/very-long-directory-name/very-long-directory-name/very-long-directory-name/very-long-directory-name/very-long-directory-name/",
				longDir + "/", longDir + "/leaf-file.txt",
				"link@", "longlink@", "pkg/", "pkg/__init__.py", "pkg/__pycache__/", "pkg/__pycache__/mod.pyc", "pkg/mod.py", "pkg/mod.pyc",
				"tests/", "tests/test_mod.py"},
		},
		{
			name: "python only",
			opts: CollectOptions{Include: []string{"**/*.py"}, Exclude: []string{"tests/**"}, SkipPycache: true},
			want: []string{"pkg/", "pkg/__init__.py", "pkg/mod.py"},
		},
		{
			name: "skip pycache keeps the rest",
			opts: CollectOptions{Include: []string{"pkg/**"}, SkipPycache: true},
			want: []string{"pkg/", "pkg/__init__.py", "pkg/mod.py"},
		},
		{
			name: "exclude prunes directories",
			opts: CollectOptions{Exclude: []string{"lib", "big/**", "**/*.txt", "pkg/**", "tests/*"}},
			want: []string{"bin/", "bin/run.sh", "donn\u00e9es/", "empty/", "link@", "longlink@", "tests/"},
		},
		{
			name: "follow symlinks",
			opts: CollectOptions{Include: []string{"link", "bin/*"}, FollowSymlinks: true},
			want: []string{"bin/", "bin/run.sh", "link"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			es, err := Collect(root, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := paths(es); !reflect.DeepEqual(got, c.want) {
				t.Errorf("Collect:\n got %q\nwant %q", got, c.want)
			}
		})
	}

	es, err := Collect(root, CollectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]fs.FileMode{}
	for _, e := range es {
		modes[e.Path] = e.Mode
	}
	for p, want := range map[string]fs.FileMode{
		"bin/run.sh": 0o755, "lib/a.txt": 0o644, "empty": fs.ModeDir | 0o755, "link": fs.ModeSymlink | 0o777,
	} {
		if modes[p] != want {
			t.Errorf("mode of %s = %v, want %v", p, modes[p], want)
		}
	}
	for _, e := range es {
		if e.Path == "link" && e.Linkname != "lib/a.txt" {
			t.Errorf("link target = %q", e.Linkname)
		}
	}
}

func TestCollectSymlinkRules(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	src := filepath.Join(root, "src")
	must(t, os.MkdirAll(filepath.Join(src, "pkg"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "pkg", "a.py"), []byte("x = 1\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "secret.txt"), []byte("host file\n"), 0o644))
	must(t, os.Symlink("pkg", filepath.Join(src, "alias")))

	// A linked directory is walked when following, with filters applied
	// to the paths below the link.
	es, err := Collect(src, CollectOptions{FollowSymlinks: true, ConfineSymlinks: true, Include: []string{"**/*.py"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := paths(es), []string{"alias/", "alias/a.py", "pkg/", "pkg/a.py"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}

	// A link leaving the tree is refused when confined, dangling or not.
	must(t, os.Symlink("../../secret.txt", filepath.Join(src, "pkg", "leak.py")))
	_, err = Collect(src, CollectOptions{FollowSymlinks: true, ConfineSymlinks: true})
	if err == nil || !strings.Contains(err.Error(), "/leak.py -> ../../secret.txt") || !strings.Contains(err.Error(), "outside") {
		t.Errorf("escaping link: err = %v", err)
	}
	must(t, os.Remove(filepath.Join(src, "pkg", "leak.py")))
	must(t, os.Symlink("/nonexistent/x", filepath.Join(src, "pkg", "dangling")))
	if _, err = Collect(src, CollectOptions{ConfineSymlinks: true}); err == nil {
		t.Error("dangling absolute link outside the tree was accepted")
	}
	must(t, os.Remove(filepath.Join(src, "pkg", "dangling")))

	// Cycles are reported, not followed forever.
	must(t, os.Symlink("..", filepath.Join(src, "pkg", "up")))
	_, err = Collect(src, CollectOptions{FollowSymlinks: true})
	if err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: err = %v", err)
	}
}

func TestCollectErrors(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if _, err := Collect(filepath.Join(root, "missing"), CollectOptions{}); err == nil {
		t.Error("missing root accepted")
	}
	for _, bad := range []string{"", "/abs", "a//b", "../x", "a**/b", "[", "a/./b"} {
		if _, err := Collect(root, CollectOptions{Include: []string{bad}}); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
}

func TestPattern(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pat, name string
		want      bool
	}{
		{"**/*.py", "a.py", true},
		{"**/*.py", "a/b/c.py", true},
		{"**/*.py", "a/b/c.pyc", false},
		{"*.py", "a/b.py", false},
		{"tests/**", "tests", true},
		{"tests/**", "tests/x/y", true},
		{"tests/**", "tests2/x", false},
		{"a/**/b", "a/b", true},
		{"a/**/b", "a/x/y/b", true},
		{"a/**/b", "a/x/y/c", false},
		{"**", "anything/at/all", true},
		{"a/*/c", "a/b/c", true},
		{"a/*/c", "a/b/b/c", false},
		{"**/x/**", "p/x/q", true},
		{"**/x/**", "p/y/q", false},
	}
	for _, c := range cases {
		p, err := CompilePattern(c.pat)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Match(c.name); got != c.want {
			t.Errorf("%q.Match(%q) = %v, want %v", c.pat, c.name, got, c.want)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
