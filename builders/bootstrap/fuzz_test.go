package bootstrap

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/conda/repodata"
)

// FuzzQuote checks that bash reads every quoted value back unchanged: the
// scripts carry URLs and names from receipts and locks.
func FuzzQuote(f *testing.F) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		f.Skip("no bash")
	}
	for _, s := range []string{"", "plain", "it's", "'", "''", "$(rm -rf /)", "`x`", "a\nb", "\\", "${HOME}", "!x", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsRune(s, 0) {
			return // no shell word holds a NUL byte
		}
		out, err := exec.Command(bash, "-c", "printf %s "+quote(s)).Output()
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if string(out) != s {
			t.Fatalf("quote(%q) reads back as %q", s, out)
		}
	})
}

// FuzzRewrite feeds arbitrary package locations: Rewrite never panics and
// every URL it returns stays under the mirror root, one subdir deep.
func FuzzRewrite(f *testing.F) {
	f.Add("https://conda.anaconda.org/conda-forge/linux-64/a-1-0.conda", "", "", "linux-64/a-1-0.conda")
	f.Add("file:///ch/noarch/b-2-0.tar.bz2", "noarch", "b-2-0.tar.bz2", "noarch/b-2-0.tar.bz2")
	f.Add("", "", "", "")
	f.Add("https://x/../..", "..", "..", "../..")
	f.Add("https://x/a/b#c?d", "a/b", "c#d", "x")
	f.Fuzz(func(t *testing.T, url, subdir, fn, mirrorPath string) {
		sum := strings.Repeat("ab", 32)
		env := &lock.Environment{Platform: "linux-64", Packages: []repodata.Record{{Name: "p", Version: "1", URL: url, Subdir: subdir, FileName: fn, SHA256: sum}}}
		var mirror builders.Input
		if mirrorPath != "" {
			mirror.Manifest = artifact.Manifest{Files: []artifact.File{{Path: mirrorPath, SHA256: sum}}}
		}
		const root = "https://m.example/repo"
		got, err := Rewrite(env, root, mirror)
		if err != nil {
			return
		}
		u := got.Packages[0].URL
		rest, ok := strings.CutPrefix(u, root+"/")
		if !ok {
			t.Fatalf("%q left the root", u)
		}
		parts := strings.Split(rest, "/")
		if len(parts) != 2 || parts[0] == "" || parts[1] == "" || parts[0] == ".." || parts[1] == ".." || strings.ContainsAny(rest, "#?") {
			t.Fatalf("%q is not <root>/<subdir>/<file>", u)
		}
		if env.Packages[0].URL != url {
			t.Fatal("the input was modified")
		}
	})
}
