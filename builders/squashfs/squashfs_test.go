package squashfs

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/internal/artifact"
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

func TestImageIsReproducibleAndListsTheInstalledTree(t *testing.T) {
	testutil.Tool(t, "mksquashfs")
	unsquashfs := testutil.Tool(t, "unsquashfs")
	res, pkgs := lockedEnv(t)
	b := New()
	var sums []string
	var req *builders.Request
	for i := 0; i < 2; i++ {
		req = request(t, res, pkgs, &Config{Environment: "environment.ml"})
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
	}
	if sums[0] != sums[1] {
		t.Fatalf("two builds differ: %s %s", sums[0], sums[1])
	}
	// unsquashfs -l lists exactly the staged tree.
	out, err := exec.Command(unsquashfs, "-l", "-d", "", filepath.Join(req.OutDir, "image.sqfs")).Output()
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(l, "/") {
			listed = append(listed, l)
		}
	}
	var staged []string
	root := filepath.Join(req.TempDir, "root")
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		rel, _ := filepath.Rel(root, p)
		if rel != "." {
			staged = append(staged, "/"+rel)
		}
		return nil
	})
	sort.Strings(listed)
	sort.Strings(staged)
	if strings.Join(listed, "\n") != strings.Join(staged, "\n") {
		t.Fatalf("image lists %d paths, staged tree has %d", len(listed), len(staged))
	}
	hasPyc := false
	for _, p := range listed {
		if strings.HasPrefix(p, "/lib/python3.11/site-packages/wordcount/__pycache__/") && strings.HasSuffix(p, ".pyc") {
			hasPyc = true
		}
	}
	if !hasPyc {
		t.Fatal("no .pyc compiled for site-packages")
	}
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
