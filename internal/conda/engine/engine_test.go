package engine

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/internal/conda/fixture"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/conda/oracle"
	"github.com/sparkenv/sparkenv/internal/testutil"
)

var quickSpecs = []string{"python 3.11.*", "wordcount", "prefixbin", "prefixtext"}

// serveChannel writes the quickstart channel and serves it on loopback.
func serveChannel(t *testing.T) (string, string) {
	t.Helper()
	testutil.Python(t, "3.11") // the channel's python comes from pyenv
	testutil.Tool(t, "gcc")
	dir := t.TempDir()
	if err := fixture.QuickstartChannel(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL, dir
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// treeDigest is the digest of every regular file and symlink of a tree.
func treeDigest(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			lines = append(lines, rel+" -> "+target)
		case info.Mode().IsRegular():
			sum, _, err := artifact.HashFile(p)
			if err != nil {
				return err
			}
			lines = append(lines, rel+" "+info.Mode().String()+" "+sum)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestLockInstallRunAtTwoPrefixes(t *testing.T) {
	url, _ := serveChannel(t)
	eng := &Engine{PkgsDir: t.TempDir(), Jobs: 4}
	ctx := context.Background()
	env, err := eng.Solve(ctx, SolveRequest{Platform: "linux-64", Channels: []string{url}, Specs: quickSpecs})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, r := range env.Packages {
		names[r.Name] = r.Version
		if !strings.HasPrefix(r.URL, url+"/") || r.SHA256 == "" {
			t.Fatalf("record %s: url %q sha256 %q", r.DistName(), r.URL, r.SHA256)
		}
	}
	for _, want := range []string{"python", "wordcount", "textnorm", "tinyjson", "prefixbin", "prefixtext"} {
		if names[want] == "" {
			t.Fatalf("solution lacks %s: %v", want, names)
		}
	}

	// The lock round-trips through its file format.
	lf := &lock.File{Version: lock.Version, Environments: map[string]*lock.Environment{"ml": env}}
	lockPath := filepath.Join(t.TempDir(), lock.FileName)
	if err := lock.Write(lockPath, lf); err != nil {
		t.Fatal(err)
	}
	lf, err = lock.Read(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	env = lf.Environments["ml"]

	for _, prefix := range []string{filepath.Join(t.TempDir(), "first"), filepath.Join(t.TempDir(), "second", "deeper", "env")} {
		rep, err := eng.Install(ctx, env, prefix, InstallOptions{AllowHardlinks: true})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Patched == 0 {
			t.Fatalf("no file was patched: %+v", rep)
		}
		py := filepath.Join(prefix, "bin", "python3.11")
		got := run(t, py, "-c", "import sys, wordcount, tinyjson; print(sys.prefix); print(tinyjson.dumps(dict(wordcount.count(['Élan élan spark']))))")
		if want := prefix + "\n" + `{"elan":2,"spark":1}`; got != want {
			t.Fatalf("python printed %q, want %q", got, want)
		}
		if got := run(t, filepath.Join(prefix, "bin", "textnorm"), "Ça", "VA"); got != "ca va" {
			t.Fatalf("entry point printed %q", got)
		}
		if got := run(t, filepath.Join(prefix, "bin", "prefixbin")); got != prefix+"/share/prefixbin/data" {
			t.Fatalf("binary printed %q", got)
		}
		if got := run(t, filepath.Join(prefix, "bin", "prefixtext-where")); got != prefix+"/share/prefixtext" {
			t.Fatalf("text placeholder script printed %q", got)
		}
		// conda-meta: history and one record per package, listing its files.
		if _, err := os.Stat(filepath.Join(prefix, "conda-meta", "history")); err != nil {
			t.Fatal(err)
		}
		for _, r := range env.Packages {
			b, err := os.ReadFile(filepath.Join(prefix, "conda-meta", r.DistName()+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var meta struct {
				Files     []string `json:"files"`
				PathsData struct {
					Paths []map[string]any `json:"paths"`
				} `json:"paths_data"`
				URL string `json:"url"`
			}
			if err := json.Unmarshal(b, &meta); err != nil {
				t.Fatal(err)
			}
			if len(meta.Files) == 0 || len(meta.PathsData.Paths) != len(meta.Files) || meta.URL != r.URL {
				t.Fatalf("conda-meta of %s incomplete: %d files, %d paths, url %q", r.Name, len(meta.Files), len(meta.PathsData.Paths), meta.URL)
			}
			for _, f := range meta.Files {
				if _, err := os.Lstat(filepath.Join(prefix, f)); err != nil {
					t.Fatalf("%s lists %s, which is not installed", r.Name, f)
				}
			}
		}
	}

	// Installing the same lock twice for one target prefix gives identical trees.
	target := "/opt/conda"
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, d := range []string{a, b} {
		if _, err := eng.Install(ctx, env, d, InstallOptions{TargetPrefix: target}); err != nil {
			t.Fatal(err)
		}
	}
	if treeDigest(t, a) != treeDigest(t, b) {
		t.Fatal("two installs of one lock differ")
	}

	// A real conda implementation solves the same specs to the same set.
	o := oracle.ForTest(t)
	recs, err := o.SimpleSolve(ctx, quickSpecs, []string{url}, []string{"linux-64", "noarch"})
	if err != nil {
		t.Fatal(err)
	}
	theirs := map[string]string{}
	for _, r := range recs {
		if !strings.HasPrefix(r.Name, "__") {
			theirs[r.Name] = r.Version + "-" + r.Build
		}
	}
	ours := map[string]string{}
	for _, r := range env.Packages {
		ours[r.Name] = r.Version + "-" + r.Build
	}
	if len(ours) != len(theirs) {
		t.Fatalf("sets differ:\nours   %v\nrattler %v", ours, theirs)
	}
	for n, v := range ours {
		if theirs[n] != v {
			t.Fatalf("%s: ours %s, rattler %s", n, v, theirs[n])
		}
	}
}

func TestTamperedPackageIsRefused(t *testing.T) {
	url, dir := serveChannel(t)
	eng := &Engine{PkgsDir: t.TempDir(), Jobs: 2}
	ctx := context.Background()
	env, err := eng.Solve(ctx, SolveRequest{Platform: "linux-64", Channels: []string{url}, Specs: []string{"tinyjson"}})
	if err != nil {
		t.Fatal(err)
	}
	// The channel's file changes after locking: the lock's sha256 no longer
	// matches, and nothing is installed.
	rec := env.Packages[0]
	p := filepath.Join(dir, rec.Subdir, rec.FileName)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(t.TempDir(), "env")
	_, err = eng.Install(ctx, env, prefix, InstallOptions{})
	if err == nil || !strings.Contains(err.Error(), rec.FileName) {
		t.Fatalf("err = %v; want a checksum error naming %s", err, rec.FileName)
	}
	if _, serr := os.Stat(prefix); !os.IsNotExist(serr) {
		t.Fatalf("prefix exists after a failed install")
	}
}

func TestUnsatisfiableIsExplained(t *testing.T) {
	url, _ := serveChannel(t)
	eng := &Engine{PkgsDir: t.TempDir()}
	_, err := eng.Solve(context.Background(), SolveRequest{Platform: "linux-64", Channels: []string{url},
		Specs: []string{"wordcount", "textnorm <1"}})
	msg, ok := ExplainUnsatisfiable(err)
	if !ok {
		t.Fatalf("err = %v; want an unsatisfiable error", err)
	}
	// No textnorm below 1 exists: the message names the spec and what the
	// channels do have.
	if !strings.Contains(msg, "textnorm <1") || !strings.Contains(msg, "1.0.0") {
		t.Fatalf("explanation does not name the conflict: %s", msg)
	}
}
