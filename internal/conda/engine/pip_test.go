package engine

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sparkenv/sparkenv/internal/conda/install"
	"github.com/sparkenv/sparkenv/internal/testutil"
	"github.com/sparkenv/sparkenv/internal/wheel/wheeltest"
)

// Conda packages and pip wheels in one environment: pip resolves the
// requirements for the solved python (not the build machine's), the lock
// records each wheel, and Install lays them into the environment's
// site-packages with scripts that use its python.
func TestPipPackagesInAnEnvironment(t *testing.T) {
	url, _ := serveChannel(t)
	testutil.Python(t, "3.11")
	links := t.TempDir()
	for _, s := range []wheeltest.Spec{
		{Name: "shout-case", Version: "1.2.0", RequiresDist: []string{"tiny-util>=0.1"},
			Files:       map[string]string{"shout_case/__init__.py": "from tiny_util import bang\n\ndef shout(s):\n    return bang(s.upper())\n\ndef main():\n    import sys\n    print(shout(' '.join(sys.argv[1:])))\n"},
			EntryPoints: "[console_scripts]\nshout = shout_case:main\n"},
		{Name: "tiny-util", Version: "0.3", Files: map[string]string{"tiny_util/__init__.py": "def bang(s):\n    return s + '!'\n"}},
	} {
		if _, err := wheeltest.Write(links, s); err != nil {
			t.Fatal(err)
		}
	}
	eng := &Engine{PkgsDir: t.TempDir(), Jobs: 2}
	ctx := context.Background()
	env, err := eng.Solve(ctx, SolveRequest{Platform: "linux-64", Channels: []string{url},
		Specs: []string{"python 3.11.*", "textnorm"}, Pip: []string{"shout-case==1.2.0"}, PipFindLinks: []string{links}})
	if err != nil {
		t.Fatal(err)
	}
	if len(env.Pip) != 2 || env.Pip[0].Name != "shout-case" || env.Pip[1].Name != "tiny-util" {
		t.Fatalf("locked wheels: %+v", env.Pip)
	}
	for _, w := range env.Pip {
		if len(w.SHA256) != 64 || !strings.HasPrefix(w.URL, "file://") {
			t.Fatalf("wheel %s: sha256 %q url %q", w.Name, w.SHA256, w.URL)
		}
	}
	prefix := filepath.Join(t.TempDir(), "env")
	if _, err := eng.Install(ctx, env, prefix, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := run(t, filepath.Join(prefix, "bin", "python3.11"), "-c", "import shout_case, textnorm; print(shout_case.shout(textnorm.normalize('Ça va')))"); got != "CA VA!" {
		t.Fatalf("python printed %q", got)
	}
	if got := run(t, filepath.Join(prefix, "bin", "shout"), "hi"); got != "HI!" {
		t.Fatalf("console script printed %q", got)
	}

	// A layout of the same environment names the same tree: the wheels'
	// files over the conda packages'.
	staged := filepath.Join(t.TempDir(), "staged")
	opts := InstallOptions{TargetPrefix: "/opt/env", AllowHardlinks: true, History: "x"}
	if _, err := eng.Install(ctx, env, staged, opts); err != nil {
		t.Fatal(err)
	}
	tree, err := eng.Layout(ctx, env, t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range tree.Entries {
		switch e.Type {
		case install.EntryDir:
			lines = append(lines, e.Path+" d")
		case install.EntrySymlink:
			lines = append(lines, e.Path+" -> "+e.Target)
		default:
			b, err := os.ReadFile(e.Source)
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(e.Source)
			lines = append(lines, fmt.Sprintf("%s %o %x", e.Path, fi.Mode().Perm(), sha256.Sum256(b)))
		}
	}
	var want []string
	filepath.WalkDir(staged, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == staged {
			return err
		}
		rel, _ := filepath.Rel(staged, p)
		fi, _ := os.Lstat(p)
		switch {
		case fi.IsDir():
			want = append(want, rel+" d")
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			want = append(want, rel+" -> "+target)
		default:
			b, _ := os.ReadFile(p)
			want = append(want, fmt.Sprintf("%s %o %x", rel, fi.Mode().Perm(), sha256.Sum256(b)))
		}
		return nil
	})
	sort.Strings(want)
	if g, w := strings.Join(lines, "\n"), strings.Join(want, "\n"); g != w {
		t.Fatalf("layout:\n%s\n----\ninstalled:\n%s", g, w)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "lib/python3.11/site-packages/shout_case/__init__.py 644") {
		t.Fatal("the layout has no wheel files")
	}
}
