package squashfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/condaenv"
	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/internal/conda/install"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/execx"
	"github.com/sparkenv/sparkenv/internal/testutil"
	"github.com/sparkenv/sparkenv/internal/testutil/condatest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	condatest.Cleanup()
	os.Exit(code)
}

// lockedEnv is the quickstart environment these tests build images of.
func lockedEnv(t *testing.T) (*lock.Resolved, string) {
	t.Helper()
	return condatest.Locked(t, "ml", "/opt/conda", "python 3.11.*", "wordcount", "prefixbin"), condatest.PkgsDir(t)
}

func request(t *testing.T, res *lock.Resolved, pkgs string, cfg *Config) *builders.Request {
	t.Helper()
	return &builders.Request{
		Address: "target.squashfs.image", Name: "image", Config: cfg,
		Inputs: []builders.Input{condatest.Input(t, res)},
		OutDir: t.TempDir(), TempDir: t.TempDir(), Log: io.Discard,
		Runner:          &execx.Runner{Env: os.Environ()},
		PackageCacheDir: pkgs, Jobs: 2,
	}
}

// TestImageIsTheInstalledTree builds the image twice, once compiling every
// .pyc and once with all of them cached, and checks that both are the same
// bytes and that the image holds exactly the tree a person would pack by
// hand: the environment installed for /opt/conda (files copied into a
// directory) and compiled by python's compileall with unchecked-hash .pyc
// files, as unsquashfs extracts it.
func TestImageIsTheInstalledTree(t *testing.T) {
	testutil.Tool(t, "mksquashfs")
	unsquashfs := testutil.Tool(t, "unsquashfs")
	res, pkgs := lockedEnv(t)
	if err := os.RemoveAll(filepath.Join(pkgs, "pyc")); err != nil {
		t.Fatal(err)
	}
	b := New()
	var sums, logs []string
	var req *builders.Request
	for i := 0; i < 2; i++ {
		req = request(t, res, pkgs, &Config{Environment: "environment.ml"})
		var log strings.Builder
		req.Log = &log
		r, err := b.Build(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if r.Metadata["main"] != "image.sqfs" || r.Metadata["mount_point"] != "/opt/conda" {
			t.Fatalf("metadata %v", r.Metadata)
		}
		sum, _, err := artifact.HashFile(filepath.Join(req.OutDir, "image.sqfs"))
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, sum)
		logs = append(logs, log.String())
	}
	if sums[0] != sums[1] {
		t.Fatalf("compiling and cached builds differ: %s %s", sums[0], sums[1])
	}
	if !strings.Contains(logs[0], "compiling ") || strings.Contains(logs[1], "compiling ") {
		t.Fatalf("the first build should compile and the second not:\n%s\n----\n%s", logs[0], logs[1])
	}
	// A damaged cache entry is compiled again and replaced.
	manifests, _ := filepath.Glob(filepath.Join(pkgs, "pyc", "*", "*", "manifest"))
	if len(manifests) == 0 {
		t.Fatal("no .pyc cache entries")
	}
	if err := os.WriteFile(manifests[0], []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	again := request(t, res, pkgs, &Config{Environment: "environment.ml"})
	if _, err := b.Build(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	if sum, _, _ := artifact.HashFile(filepath.Join(again.OutDir, "image.sqfs")); sum != sums[0] {
		t.Fatalf("build after repairing the .pyc cache differs: %s %s", sum, sums[0])
	}
	if b, err := os.ReadFile(manifests[0]); err != nil || string(b) == "{" {
		t.Fatalf("damaged manifest not replaced: %q %v", b, err)
	}
	// So is an entry that lost a .pyc file.
	pycs, _ := filepath.Glob(filepath.Join(pkgs, "pyc", "*", "*", "lib", "python3.11", "__pycache__", "*.pyc"))
	if len(pycs) == 0 {
		t.Fatal("no cached .pyc files")
	}
	if err := os.Remove(pycs[0]); err != nil {
		t.Fatal(err)
	}
	again = request(t, res, pkgs, &Config{Environment: "environment.ml"})
	if _, err := b.Build(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	if sum, _, _ := artifact.HashFile(filepath.Join(again.OutDir, "image.sqfs")); sum != sums[0] {
		t.Fatalf("build after a .pyc was removed from the cache differs: %s %s", sum, sums[0])
	}
	if _, err := os.Stat(pycs[0]); err != nil {
		t.Fatalf("removed .pyc not compiled again: %v", err)
	}
	// And so is a cache whose .pyc files lost their mode, which the image
	// would take (as a cache restored with a umask of 077 has them).
	filepath.WalkDir(filepath.Join(pkgs, "pyc"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".pyc") {
			os.Chmod(p, 0o600)
		}
		return nil
	})
	again = request(t, res, pkgs, &Config{Environment: "environment.ml"})
	if _, err := b.Build(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	if sum, _, _ := artifact.HashFile(filepath.Join(again.OutDir, "image.sqfs")); sum != sums[0] {
		t.Fatalf("build after .pyc modes changed in the cache differs: %s %s", sum, sums[0])
	}

	// The tree by hand: install, then compileall over lib/python3.11.
	manual := filepath.Join(t.TempDir(), "conda")
	oracle := request(t, res, pkgs, &Config{Environment: "environment.ml"})
	if _, err := condaenv.Stage(context.Background(), oracle, res, manual, "/opt/conda"); err != nil {
		t.Fatal(err)
	}
	if done, err := condaenv.CompilePyc(context.Background(), oracle, res.Environment, manual, "/opt/conda"); err != nil || !done {
		t.Fatalf("compileall: %v %v", done, err)
	}
	extracted := filepath.Join(t.TempDir(), "x")
	if out, err := exec.Command(unsquashfs, "-d", extracted, filepath.Join(req.OutDir, "image.sqfs")).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got, want := shapeOf(t, extracted), shapeOf(t, manual)
	if got != want {
		gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
		t.Fatalf("image (%d paths) and installed tree (%d paths) differ:\n%s", len(gl), len(wl), firstDiff(gl, wl))
	}
	if !strings.Contains(got, "lib/python3.11/site-packages/wordcount/__pycache__/__init__.cpython-311.pyc pyc 644") {
		t.Fatal("no .pyc compiled for site-packages")
	}
	samePyc(t, filepath.Join(manual, "bin", "python3.11"), extracted, manual)
	// unsquashfs -l lists the same paths.
	out, err := exec.Command(unsquashfs, "-l", "-d", "", filepath.Join(req.OutDir, "image.sqfs")).Output()
	if err != nil {
		t.Fatal(err)
	}
	listed := 0
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(l, "/") {
			listed++
		}
	}
	if n := len(strings.Split(want, "\n")); listed != n {
		t.Fatalf("unsquashfs -l lists %d paths, the tree has %d", listed, n)
	}
}

// shapeOf lists every path below root with its type, permission bits and
// content digest or link target.
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
		line := filepath.ToSlash(rel)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " l -> " + target
		case fi.IsDir():
			line += fmt.Sprintf(" d %o", fi.Mode().Perm())
		case strings.HasSuffix(p, ".pyc"):
			// Two interpreters may write different bytes for the same
			// code (marshal shares objects by reference count), so .pyc
			// files are compared by header here and by code in samePyc.
			b, err := os.ReadFile(p)
			if err != nil || len(b) < 16 {
				return fmt.Errorf("%s: %v (%d bytes)", p, err, len(b))
			}
			line += fmt.Sprintf(" pyc %o %x", fi.Mode().Perm(), b[:16])
		default:
			sum, _, err := artifact.HashFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" f %o %s", fi.Mode().Perm(), sum)
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// samePycScript compares the .pyc files of two trees: the same code
// objects, recursively, with the same file names (the paths under the
// mount point) and names.
const samePycScript = `import marshal, os, sys, types
a_root, b_root = sys.argv[1], sys.argv[2]
def same(x, y):
    if isinstance(x, types.CodeType):
        return (isinstance(y, types.CodeType) and x == y and x.co_filename == y.co_filename
                and x.co_qualname == y.co_qualname
                and all(same(c, d) for c, d in zip(x.co_consts, y.co_consts)))
    return type(x) is type(y) and x == y
n = 0
for dirpath, dirs, files in os.walk(a_root):
    for f in files:
        if not f.endswith(".pyc"):
            continue
        rel = os.path.relpath(os.path.join(dirpath, f), a_root)
        a = open(os.path.join(a_root, rel), "rb").read()
        b = open(os.path.join(b_root, rel), "rb").read()
        if a[:16] != b[:16] or not same(marshal.loads(a[16:]), marshal.loads(b[16:])):
            print("differs:", rel)
            sys.exit(1)
        n += 1
print(n)
`

// samePyc checks with the environment's python that every .pyc file of
// tree a holds the same code as the one of tree b.
func samePyc(t *testing.T, python, a, b string) {
	t.Helper()
	out, err := exec.Command(python, "-c", samePycScript, a, b).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf(".pyc files with the same code: %s", strings.TrimSpace(string(out)))
}

func firstDiff(a, b []string) string {
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return fmt.Sprintf("image: %s\ntree:  %s", x, y)
		}
	}
	return ""
}

// TestPseudoNames packs entries whose names and link targets hold spaces,
// quotes and backslashes, and checks what unsquashfs extracts.
func TestPseudoNames(t *testing.T) {
	mk := testutil.Tool(t, "mksquashfs")
	unsquashfs := testutil.Tool(t, "unsquashfs")
	work := t.TempDir()
	src := filepath.Join(work, `a "host" file\with spaces`)
	if err := os.WriteFile(src, []byte("data\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	entries := []install.Entry{
		{Path: "dir with space", Type: install.EntryDir, Mode: 0o755},
		{Path: `dir with space/"quoted" back\slash`, Type: install.EntryFile, Mode: 0o755, Source: src},
		{Path: "dir with space/tab\there", Type: install.EntrySymlink, Target: `../x y\z "q"`},
	}
	var pf strings.Builder
	if err := WritePseudo(&pf, entries); err != nil {
		t.Fatal(err)
	}
	pseudo := filepath.Join(work, "pseudo")
	root := filepath.Join(work, "root")
	os.WriteFile(pseudo, []byte(pf.String()), 0o644)
	os.Mkdir(root, 0o755)
	img := filepath.Join(work, "img.sqfs")
	if out, err := exec.Command(mk, Args(root, img, pseudo, "", 0, 1)...).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, pf.String())
	}
	x := filepath.Join(work, "x")
	if out, err := exec.Command(unsquashfs, "-d", x, img).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := strings.Join([]string{
		"dir with space d 755",
		`dir with space/"quoted" back\slash f 755 ` + sha256Hex("data\n"),
		"dir with space/tab\there l -> ../x y\\z \"q\"",
	}, "\n")
	if got := shapeOf(t, x); got != want {
		t.Fatalf("extracted:\n%s\nwant:\n%s", got, want)
	}
	for _, bad := range []install.Entry{
		{Path: "a\nb", Type: install.EntryDir, Mode: 0o755},
		{Path: "a", Type: install.EntrySymlink, Target: " leading space"},
		{Path: "a", Type: install.EntryFile, Source: "/x\ny"},
	} {
		if err := WritePseudo(io.Discard, []install.Entry{bad}); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// TestPseudoOrder lays out the quickstart environment and packs it twice:
// with the pseudo file in WritePseudo's order and in sorted order. The
// images must be the same bytes, and the order must list every directory
// before what it holds and, within a directory, bigger subtrees first.
func TestPseudoOrder(t *testing.T) {
	mk := testutil.Tool(t, "mksquashfs")
	res, pkgs := lockedEnv(t)
	req := request(t, res, pkgs, &Config{Environment: "environment.ml"})
	tree, err := condaenv.Layout(context.Background(), req, res, filepath.Join(req.TempDir, "layout"), "/opt/conda")
	if err != nil {
		t.Fatal(err)
	}
	order := pseudoOrder(tree.Entries)
	if len(order) != len(tree.Entries) {
		t.Fatalf("order has %d of %d entries", len(order), len(tree.Entries))
	}
	seen := map[string]bool{}
	for _, i := range order {
		p := tree.Entries[i].Path
		if j := strings.LastIndexByte(p, '/'); j >= 0 && !seen[p[:j]] {
			t.Fatalf("%s listed before its directory", p)
		}
		seen[p] = true
	}
	// Within each directory, subtree sizes never grow along the order.
	below := map[string]int{}
	for _, e := range tree.Entries {
		for p := e.Path; strings.Contains(p, "/"); {
			p = p[:strings.LastIndexByte(p, '/')]
			below[p]++
		}
	}
	last := map[string]int{}
	for _, i := range order {
		p := tree.Entries[i].Path
		dir := "."
		if j := strings.LastIndexByte(p, '/'); j >= 0 {
			dir = p[:j]
		}
		if prev, ok := last[dir]; ok && below[p] > prev {
			t.Errorf("%s (%d paths below) listed after a sibling with %d", p, below[p], prev)
		}
		last[dir] = below[p]
	}
	sorted := make([]int, len(tree.Entries))
	for i := range sorted {
		sorted[i] = i
	}
	var sums []string
	for _, o := range [][]int{order, sorted} {
		work := t.TempDir()
		root, pseudo, img := filepath.Join(work, "root"), filepath.Join(work, "pseudo"), filepath.Join(work, "img.sqfs")
		os.Mkdir(root, 0o755)
		var pf strings.Builder
		if err := writePseudo(&pf, tree.Entries, o); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(pseudo, []byte(pf.String()), 0o644)
		if out, err := exec.Command(mk, Args(root, img, pseudo, "", 0, 2)...).CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		sum, _, err := artifact.HashFile(img)
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, sum)
	}
	if sums[0] != sums[1] {
		t.Fatalf("images differ with the order of the pseudo file: %s %s", sums[0], sums[1])
	}
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestMountedImageRuns(t *testing.T) {
	testutil.Tool(t, "mksquashfs")
	squashfuse := testutil.Tool(t, "squashfuse")
	fusermount := testutil.Tool(t, "fusermount3")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	res, pkgs := lockedEnv(t)
	mnt := filepath.Join(t.TempDir(), "conda")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	req := request(t, res, pkgs, &Config{Environment: "environment.ml", MountPoint: mnt})
	if _, err := New().Build(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(req.OutDir, "image.sqfs")
	if out, err := exec.Command(squashfuse, img, mnt).CombinedOutput(); err != nil {
		t.Skipf("squashfuse cannot mount here: %v %s", err, out)
	}
	defer exec.Command(fusermount, "-u", mnt).Run()

	py := filepath.Join(mnt, "bin", "python3.11")
	start := time.Now()
	out, err := exec.Command(py, "-c", "import sys, wordcount; print(sys.prefix); print(wordcount.__cached__)").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if lines[0] != mnt {
		t.Fatalf("sys.prefix = %q, want %q", lines[0], mnt)
	}
	t.Logf("python start and import from the mounted image: %s", time.Since(start))
	// The .pyc of the image is valid as it is: python -X importtime would
	// show a compile otherwise; check it the direct way, by asking the
	// import system whether it would use the cached file.
	check := `import importlib.util, sys
spec = importlib.util.find_spec("wordcount")
data = open(spec.cached, "rb").read()
flags = int.from_bytes(data[4:8], "little")
print("hash-based" if flags & 1 else "timestamp", "unchecked" if not flags & 2 else "checked")
`
	out, err = exec.Command(py, "-c", check).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "hash-based unchecked" {
		t.Fatalf("pyc kind = %q", got)
	}
	if got, err := exec.Command(filepath.Join(mnt, "bin", "prefixbin")).Output(); err != nil || strings.TrimSpace(string(got)) != mnt+"/share/prefixbin/data" {
		t.Fatalf("prefixbin printed %q (%v)", got, err)
	}
}

func TestValidate(t *testing.T) {
	b := New()
	for _, c := range []*Config{{MountPoint: "opt/conda"}, {Compression: "brotli"}, {Output: "a/b.sqfs"}} {
		if err := b.Validate(c, "."); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}
