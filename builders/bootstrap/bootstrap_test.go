package bootstrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/condamirror"
	"github.com/sparkenv/sparkenv/builders/squashfs"
	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/internal/conda/engine"
	"github.com/sparkenv/sparkenv/internal/conda/fixture"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/conda/repodata"
	"github.com/sparkenv/sparkenv/internal/execx"
	"github.com/sparkenv/sparkenv/internal/testutil"
	"github.com/sparkenv/sparkenv/publishers"
)

var shared struct {
	dir string

	envOnce sync.Once
	channel string
	res     *lock.Resolved
	pkgs    string
	envErr  error

	imgOnce sync.Once
	img     builders.Input
	mnt     string
	imgErr  error

	binOnce sync.Once
	bin     string
	binErr  error
}

type repodataRecord = repodata.Record

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

func sharedDir() (string, error) {
	if shared.dir != "" {
		return shared.dir, nil
	}
	d, err := os.MkdirTemp("", "bootstrap-test-")
	shared.dir = d
	return d, err
}

// lockedEnv builds the quickstart channel and solves it once for the
// package.
func lockedEnv(t *testing.T) (*lock.Resolved, string, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("solves an environment and runs the scripts for real")
	}
	testutil.Python(t, "3.11")
	testutil.Tool(t, "gcc")
	shared.envOnce.Do(func() {
		dir, err := sharedDir()
		if err != nil {
			shared.envErr = err
			return
		}
		shared.channel = filepath.Join(dir, "channel")
		if shared.envErr = fixture.QuickstartChannel(context.Background(), shared.channel); shared.envErr != nil {
			return
		}
		shared.pkgs = filepath.Join(dir, "pkgs")
		env, err := (&engine.Engine{PkgsDir: shared.pkgs}).Solve(context.Background(), engine.SolveRequest{
			Platform: "linux-64", Channels: []string{shared.channel}, Specs: []string{"python 3.11.*", "wordcount"}})
		shared.res, shared.envErr = &lock.Resolved{Name: "ml", Prefix: "/opt/conda", Environment: env}, err
	})
	if shared.envErr != nil {
		t.Fatal(shared.envErr)
	}
	return shared.res, shared.pkgs, shared.channel
}

// sparkenvBinary builds the real command once: channel mode runs it on the
// "node".
func sparkenvBinary(t *testing.T) string {
	t.Helper()
	goTool := testutil.Tool(t, "go")
	shared.binOnce.Do(func() {
		dir, err := sharedDir()
		if err != nil {
			shared.binErr = err
			return
		}
		shared.bin = filepath.Join(dir, "bin", "sparkenv")
		cmd := exec.Command(goTool, "build", "-o", shared.bin, "github.com/sparkenv/sparkenv/cmd/sparkenv")
		cmd.Dir = testutil.Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			shared.binErr = fmt.Errorf("go build sparkenv: %v\n%s", err, out)
		}
	})
	if shared.binErr != nil {
		t.Fatal(shared.binErr)
	}
	return shared.bin
}

// mountMu keeps the tests that mount the shared image at its one mount
// point from overlapping; they still run beside the other tests.
var mountMu sync.Mutex

func needFuse(t *testing.T) {
	t.Helper()
	testutil.Tool(t, "squashfuse")
	testutil.Tool(t, "fusermount3")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
}

func envInput(t *testing.T, res *lock.Resolved) builders.Input {
	t.Helper()
	dir := t.TempDir()
	b, _ := json.Marshal(res)
	if err := os.WriteFile(filepath.Join(dir, lock.ResolvedFileName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return builders.Input{Address: "environment.ml", Kind: "environment", Name: "ml", Dir: dir}
}

// sharedImage builds, once, a squashfs image of the environment for a
// mount point of its own; the tests that mount it run one after another.
func sharedImage(t *testing.T) (builders.Input, string) {
	t.Helper()
	testutil.Tool(t, "mksquashfs")
	res, pkgs, _ := lockedEnv(t)
	shared.imgOnce.Do(func() {
		shared.img, shared.mnt, shared.imgErr = buildImage(res, pkgs)
	})
	if shared.imgErr != nil {
		t.Fatal(shared.imgErr)
	}
	return shared.img, shared.mnt
}

func buildImage(res *lock.Resolved, pkgs string) (builders.Input, string, error) {
	var in builders.Input
	base, err := sharedDir()
	if err != nil {
		return in, "", err
	}
	if base, err = filepath.EvalSymlinks(base); err != nil {
		return in, "", err
	}
	mnt := filepath.Join(base, "mnt", "conda")
	dirs := map[string]string{}
	for _, d := range []string{"env", "out", "tmp"} {
		dirs[d] = filepath.Join(base, "image-"+d)
		if err := os.MkdirAll(dirs[d], 0o755); err != nil {
			return in, "", err
		}
	}
	b, _ := json.Marshal(res)
	if err := os.WriteFile(filepath.Join(dirs["env"], lock.ResolvedFileName), b, 0o644); err != nil {
		return in, "", err
	}
	req := &builders.Request{
		Address: "target.squashfs.image", Name: "image",
		Config: &squashfs.Config{Environment: "environment.ml", MountPoint: mnt},
		Inputs: []builders.Input{{Address: "environment.ml", Kind: "environment", Name: "ml", Dir: dirs["env"]}},
		OutDir: dirs["out"], TempDir: dirs["tmp"], Log: io.Discard,
		Runner:          &execx.Runner{Env: os.Environ()},
		PackageCacheDir: pkgs, Jobs: 2,
	}
	r, err := squashfs.New().Build(context.Background(), req)
	if err != nil {
		return in, "", err
	}
	m, err := artifact.Scan(req.OutDir)
	if err != nil {
		return in, "", err
	}
	return builders.Input{Address: "target.squashfs.image", Kind: "squashfs", Name: "image", Dir: req.OutDir, Manifest: m, Metadata: r.Metadata}, mnt, nil
}

// server serves files by URL path; a path in bad serves other bytes.
type server struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string]string
	bad   map[string]bool
	flaky map[string]int // failures left before a path is served
	hits  map[string]int
}

func newServer(t *testing.T) *server {
	s := &server{files: map[string]string{}, bad: map[string]bool{}, flaky: map[string]int{}, hits: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		src, ok := s.files[r.URL.Path]
		bad := s.bad[r.URL.Path]
		s.hits[r.URL.Path]++
		fail := s.flaky[r.URL.Path] > 0
		if fail {
			s.flaky[r.URL.Path]--
		}
		s.mu.Unlock()
		if fail {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		data, err := os.ReadFile(src)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if bad {
			data[len(data)/2] ^= 0xff
		}
		w.Write(data)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) serve(urlPath, file string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[urlPath] = file
	return s.URL + urlPath
}

func (s *server) tamper(urlPath string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bad[urlPath] = true
}

func receiptInput(t *testing.T, rc publishers.Receipt) builders.Input {
	t.Helper()
	dir := t.TempDir()
	b, _ := json.MarshalIndent(rc, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, ReceiptFileName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return builders.Input{Address: "publish.s3.repo", Kind: "s3", Name: "repo", Dir: dir,
		Manifest: artifact.Manifest{Files: []artifact.File{{Path: ReceiptFileName}}}}
}

func build(t *testing.T, cfg *Config, inputs ...builders.Input) (string, *builders.Result) {
	t.Helper()
	req := &builders.Request{Address: "target.bootstrap.nodes", Name: "nodes", Config: cfg, Inputs: inputs,
		OutDir: t.TempDir(), TempDir: t.TempDir(), Log: io.Discard, Runner: &execx.Runner{Env: os.Environ()}}
	if err := New().Validate(cfg, "."); err != nil {
		t.Fatal(err)
	}
	r, err := New().Build(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return req.OutDir, r
}

// run runs a generated script with bash, as a node would, under root.
func run(t *testing.T, script, root string, env ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Env = append(append(os.Environ(), "SPARKENV_ROOT="+root, "SPARKENV_RETRIES=2"), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mountsAt counts the mounts at dir.
func mountsAt(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] == dir {
			n++
		}
	}
	return n
}

func unmountAll(dir string) {
	for i := 0; i < 4; i++ {
		if exec.Command("fusermount3", "-u", dir).Run() != nil && exec.Command("umount", dir).Run() != nil {
			return
		}
	}
}

func pyImport(t *testing.T, prefix string) {
	t.Helper()
	out, err := exec.Command(filepath.Join(prefix, "bin", "python3.11"), "-c", "import sys, wordcount; print(sys.prefix)").CombinedOutput()
	if err != nil {
		t.Fatalf("python from %s: %v\n%s", prefix, err, out)
	}
	if got := strings.TrimSpace(string(out)); got != prefix {
		t.Fatalf("sys.prefix = %q, want %q", got, prefix)
	}
}

func TestImageModeMountsAndIsIdempotent(t *testing.T) {
	t.Parallel()
	needFuse(t)
	mountMu.Lock()
	defer mountMu.Unlock()
	img, mnt := sharedImage(t)
	main := img.Metadata["main"]
	f, _ := img.Manifest.Lookup(main)
	srv := newServer(t)
	u := srv.serve("/repo/image/"+publishers.ContentName(main, f.SHA256), filepath.Join(img.Dir, main))
	via := receiptInput(t, publishers.Receipt{Address: "publish.s3.repo", Kind: "s3", Items: []publishers.ReceiptItem{{
		Target: img.Address,
		Files: []publishers.PublishedFile{{Path: main, SHA256: f.SHA256, Size: f.Size,
			URLs: map[string]string{"https": u, "s3": "s3://bucket/image/x.sqfs", "file": "file://" + filepath.Join(img.Dir, main)}}},
	}}})
	out, _ := build(t, &Config{Image: img.Address, Via: via.Address}, img, via)
	fileOut, _ := build(t, &Config{Image: img.Address, Via: via.Address, URLScheme: "file", Platforms: []string{Yandex}}, img, via)

	t.Run("auto", func(t *testing.T) {
		// A loop mount where the kernel allows it, squashfuse otherwise;
		// fstab records the method used. The image comes from a file://
		// URL this time.
		root := t.TempDir()
		t.Cleanup(func() { unmountAll(mnt) })
		log, err := run(t, filepath.Join(fileOut, ScriptName[Yandex]), root)
		if err != nil {
			t.Fatalf("%v\n%s", err, log)
		}
		pyImport(t, mnt)
		image := filepath.Join(root, "var", "lib", "sparkenv", "images", f.SHA256[:12]+".sqfs")
		want := image + " " + mnt + " fuse.squashfuse ro,allow_other,nofail 0 0\n"
		if strings.Contains(log, "(loop)") {
			want = image + " " + mnt + " squashfs ro,loop,nofail 0 0\n"
		}
		if b, _ := os.ReadFile(filepath.Join(root, "etc", "fstab")); string(b) != want {
			t.Fatalf("fstab:\n%s\nwant:\n%s\nlog:\n%s", b, want, log)
		}
		t.Logf("auto:\n%s", log)
	})
	for _, pl := range Platforms {
		t.Run(pl, func(t *testing.T) {
			script := filepath.Join(out, ScriptName[pl])
			root := t.TempDir()
			t.Cleanup(func() { unmountAll(mnt) })
			log, err := run(t, script, root, "SPARKENV_MOUNT=squashfuse")
			if err != nil {
				t.Fatalf("%v\n%s", err, log)
			}
			t.Logf("first run:\n%s", log)
			pyImport(t, mnt)
			fstab, err := os.ReadFile(filepath.Join(root, "etc", "fstab"))
			if err != nil {
				t.Fatal(err)
			}
			image := filepath.Join(root, "var", "lib", "sparkenv", "images", f.SHA256[:12]+".sqfs")
			want := image + " " + mnt + " fuse.squashfuse ro,allow_other,nofail 0 0\n"
			if string(fstab) != want {
				t.Fatalf("fstab:\n%s\nwant:\n%s", fstab, want)
			}
			if n := mountsAt(t, mnt); n != 1 {
				t.Fatalf("%d mounts at %s after the first run", n, mnt)
			}
			logFile, _ := os.ReadFile(filepath.Join(root, "var", "log", "sparkenv-bootstrap.log"))
			if !strings.Contains(string(logFile), "mounted "+image) {
				t.Fatalf("log:\n%s", logFile)
			}

			hits := srv.hits["/repo/image/"+publishers.ContentName(main, f.SHA256)]
			again, err := run(t, script, root, "SPARKENV_MOUNT=squashfuse")
			if err != nil {
				t.Fatalf("second run: %v\n%s", err, again)
			}
			if !strings.Contains(again, "unchanged") || strings.Contains(again, "mounted ") || strings.Contains(again, "replacing") || strings.Contains(again, "download") {
				t.Fatalf("second run did not leave the node unchanged:\n%s", again)
			}
			logFile, _ = os.ReadFile(filepath.Join(root, "var", "log", "sparkenv-bootstrap.log"))
			if !strings.Contains(string(logFile), "unchanged: "+mnt) {
				t.Fatalf("log does not record the unchanged re-run:\n%s", logFile)
			}
			if n := mountsAt(t, mnt); n != 1 {
				t.Fatalf("%d mounts at %s after the second run", n, mnt)
			}
			if srv.hits["/repo/image/"+publishers.ContentName(main, f.SHA256)] != hits {
				t.Fatal("the second run downloaded the image again")
			}
			if b, _ := os.ReadFile(filepath.Join(root, "etc", "fstab")); string(b) != want {
				t.Fatalf("fstab changed on re-run:\n%s", b)
			}
			pyImport(t, mnt)
		})
	}
}

func TestImageModeRefusesAWrongChecksum(t *testing.T) {
	t.Parallel()
	needFuse(t)
	mountMu.Lock()
	defer mountMu.Unlock()
	img, mnt := sharedImage(t)
	main := img.Metadata["main"]
	f, _ := img.Manifest.Lookup(main)
	srv := newServer(t)
	u := srv.serve("/image.sqfs", filepath.Join(img.Dir, main))
	srv.tamper("/image.sqfs")
	via := receiptInput(t, publishers.Receipt{Items: []publishers.ReceiptItem{{Target: img.Address,
		Files: []publishers.PublishedFile{{Path: main, SHA256: f.SHA256, Size: f.Size, URLs: map[string]string{"https": u}}}}}})
	out, _ := build(t, &Config{Image: img.Address, Via: via.Address, Platforms: []string{EMR}}, img, via)
	root := t.TempDir()
	t.Cleanup(func() { unmountAll(mnt) })
	log, err := run(t, filepath.Join(out, ScriptName[EMR]), root, "SPARKENV_MOUNT=squashfuse")
	if err == nil {
		t.Fatalf("a tampered image was accepted:\n%s", log)
	}
	t.Logf("tampered image:\n%s", log)
	if !strings.Contains(log, "FAILED while verifying "+u) || !strings.Contains(log, "checksum mismatch") || !strings.Contains(log, "expected "+f.SHA256) {
		t.Fatalf("unclear failure:\n%s", log)
	}
	if !strings.Contains(log, "full log: "+filepath.Join(root, "var", "log", "sparkenv-bootstrap.log")) {
		t.Fatalf("the failure does not say where the log is:\n%s", log)
	}
	if n := mountsAt(t, mnt); n != 0 {
		t.Fatalf("%d mounts at %s", n, mnt)
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc", "fstab")); err == nil && len(b) > 0 {
		t.Fatalf("fstab written:\n%s", b)
	}
	images, _ := filepath.Glob(filepath.Join(root, "var", "lib", "sparkenv", "images", "*"))
	if len(images) != 0 {
		t.Fatalf("a bad image was kept: %v", images)
	}
}

func TestImageModeRefusesANonEmptyMountPoint(t *testing.T) {
	t.Parallel()
	needFuse(t)
	mountMu.Lock()
	defer mountMu.Unlock()
	img, mnt := sharedImage(t)
	main := img.Metadata["main"]
	f, _ := img.Manifest.Lookup(main)
	srv := newServer(t)
	u := srv.serve("/image.sqfs", filepath.Join(img.Dir, main))
	via := receiptInput(t, publishers.Receipt{Items: []publishers.ReceiptItem{{Target: img.Address,
		Files: []publishers.PublishedFile{{Path: main, SHA256: f.SHA256, Size: f.Size, URLs: map[string]string{"https": u}}}}}})
	out, _ := build(t, &Config{Image: img.Address, Via: via.Address, Platforms: []string{Yandex}}, img, via)
	if err := os.MkdirAll(filepath.Join(mnt, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Join(mnt, "bin")) })
	t.Cleanup(func() { unmountAll(mnt) })
	log, err := run(t, filepath.Join(out, ScriptName[Yandex]), t.TempDir(), "SPARKENV_MOUNT=squashfuse")
	if err == nil || !strings.Contains(log, "refusing to mount over "+mnt) {
		t.Fatalf("mounted over a non-empty directory (%v):\n%s", err, log)
	}
	if n := mountsAt(t, mnt); n != 0 {
		t.Fatalf("%d mounts at %s", n, mnt)
	}
	if srv.hits["/image.sqfs"] != 0 {
		t.Fatal("downloaded before checking the mount point")
	}
}

// tinyImage is a small squashfs image for mnt that holds one file.
func tinyImage(t *testing.T, mnt string) builders.Input {
	t.Helper()
	mksquashfs := testutil.Tool(t, "mksquashfs")
	src, dir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "marker"), []byte("older image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mksquashfs, src, filepath.Join(dir, "old.sqfs"), "-noappend", "-quiet", "-no-progress").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	m, err := artifact.Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	return builders.Input{Address: "target.squashfs.old", Kind: "squashfs", Name: "old", Dir: dir, Manifest: m,
		Metadata: map[string]string{"main": "old.sqfs", "mount_point": mnt}}
}

// imageScript serves img and writes the bootstrap scripts for it.
func imageScript(t *testing.T, srv *server, img builders.Input, platform string) string {
	t.Helper()
	main := img.Metadata["main"]
	f, _ := img.Manifest.Lookup(main)
	u := srv.serve("/"+img.Name+"/"+publishers.ContentName(main, f.SHA256), filepath.Join(img.Dir, main))
	via := receiptInput(t, publishers.Receipt{Items: []publishers.ReceiptItem{{Target: img.Address,
		Files: []publishers.PublishedFile{{Path: main, SHA256: f.SHA256, Size: f.Size, URLs: map[string]string{"https": u}}}}}})
	out, _ := build(t, &Config{Image: img.Address, Via: via.Address, Platforms: []string{platform}}, img, via)
	return filepath.Join(out, ScriptName[platform])
}

func TestImageModeReplacesItsOwnImageOnly(t *testing.T) {
	t.Parallel()
	needFuse(t)
	mountMu.Lock()
	defer mountMu.Unlock()
	img, mnt := sharedImage(t)
	old := tinyImage(t, mnt)
	srv := newServer(t)
	oldScript := imageScript(t, srv, old, Dataproc)
	newScript := imageScript(t, srv, img, Dataproc)
	t.Cleanup(func() { unmountAll(mnt) })

	// A mount that is not ours is left alone.
	oldFile := filepath.Join(old.Dir, "old.sqfs")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("squashfuse", oldFile, mnt).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	log, err := run(t, newScript, t.TempDir(), "SPARKENV_MOUNT=squashfuse")
	if err == nil || !strings.Contains(log, mnt+" is already a mount point of") {
		t.Fatalf("mounted over a foreign mount (%v):\n%s", err, log)
	}
	if n := mountsAt(t, mnt); n != 1 {
		t.Fatalf("%d mounts at %s", n, mnt)
	}
	unmountAll(mnt)

	// An earlier image of the script gives way to the new one, in fstab
	// too. The server fails twice first: downloads retry.
	root := t.TempDir()
	srv.mu.Lock()
	for p := range srv.files {
		if strings.HasPrefix(p, "/old/") {
			srv.flaky[p] = 2
		}
	}
	srv.mu.Unlock()
	log, err = run(t, oldScript, root, "SPARKENV_MOUNT=squashfuse", "SPARKENV_RETRIES=3", "SPARKENV_RETRY_DELAY=0")
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if !strings.Contains(log, "(attempt 2 of 3), retrying") {
		t.Fatalf("no retries logged:\n%s", log)
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "marker")); err != nil || string(b) != "older image\n" {
		t.Fatalf("old image not mounted: %q %v", b, err)
	}
	log, err = run(t, newScript, root, "SPARKENV_MOUNT=squashfuse")
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if !strings.Contains(log, "replacing the image") {
		t.Fatalf("log:\n%s", log)
	}
	pyImport(t, mnt)
	if n := mountsAt(t, mnt); n != 1 {
		t.Fatalf("%d mounts at %s", n, mnt)
	}
	f, _ := img.Manifest.Lookup(img.Metadata["main"])
	want := filepath.Join(root, "var", "lib", "sparkenv", "images", f.SHA256[:12]+".sqfs") + " " + mnt + " fuse.squashfuse ro,allow_other,nofail 0 0\n"
	if b, _ := os.ReadFile(filepath.Join(root, "etc", "fstab")); string(b) != want {
		t.Fatalf("fstab:\n%s\nwant:\n%s", b, want)
	}
}

// channelSetup builds a conda mirror of the environment, serves it as the
// published mirror and the sparkenv binary beside it.
func channelSetup(t *testing.T, prefix string) (out string, srv *server, pkgPath string) {
	t.Helper()
	res, pkgs, _ := lockedEnv(t)
	bin := sparkenvBinary(t)
	mreq := &builders.Request{
		Address: "target.conda_mirror.repo", Name: "repo",
		Config: &condamirror.Config{Environments: []string{"environment.ml"}},
		Inputs: []builders.Input{envInput(t, res)},
		OutDir: t.TempDir(), TempDir: t.TempDir(), Log: io.Discard,
		Runner: &execx.Runner{Env: os.Environ()}, PackageCacheDir: pkgs, Jobs: 2,
	}
	mres, err := condamirror.New().Build(context.Background(), mreq)
	if err != nil {
		t.Fatal(err)
	}
	channel := mreq.OutDir
	mirror, err := artifact.Scan(channel)
	if err != nil {
		t.Fatal(err)
	}
	srv = newServer(t)
	for _, f := range mirror.Files {
		srv.serve("/repo/mirror/"+f.Path, filepath.Join(channel, filepath.FromSlash(f.Path)))
	}
	binSum, binSize, err := artifact.HashFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	binURL := srv.serve("/repo/tools/sparkenv-"+binSum[:12], bin)
	mirrorIn := builders.Input{Address: "target.conda_mirror.repo", Kind: "conda_mirror", Name: "repo", Dir: channel, Manifest: mirror, Metadata: mres.Metadata}
	via := receiptInput(t, publishers.Receipt{Items: []publishers.ReceiptItem{
		{Target: mirrorIn.Address, Root: map[string]string{"https": srv.URL + "/repo/mirror/"}},
		{Target: "target.tool.sparkenv", Files: []publishers.PublishedFile{{Path: "sparkenv", SHA256: binSum, Size: binSize,
			URLs: map[string]string{"https": binURL}}}},
	}})
	out, _ = build(t, &Config{Mirror: mirrorIn.Address, Environment: "environment.ml", Via: via.Address, Prefix: prefix},
		mirrorIn, envInput(t, res), via)
	for _, r := range res.Environment.Packages {
		if r.Name == "wordcount" {
			pkgPath = "/repo/mirror/" + r.Subdir + "/" + r.FileName
		}
	}
	if pkgPath == "" {
		t.Fatal("no wordcount in the environment")
	}
	return out, srv, pkgPath
}

func TestChannelModeInstallsWithSparkenv(t *testing.T) {
	t.Parallel()
	prefix := filepath.Join(t.TempDir(), "env")
	out, srv, _ := channelSetup(t, prefix)

	explicit, err := os.ReadFile(filepath.Join(out, "ml.explicit.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(explicit), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") && l != "@EXPLICIT" && (!strings.HasPrefix(l, srv.URL+"/repo/mirror/linux-64/") && !strings.HasPrefix(l, srv.URL+"/repo/mirror/noarch/") || !strings.Contains(l, "#sha256:")) {
			t.Fatalf("explicit line %q does not point at the mirror with a digest", l)
		}
	}
	// Every rewritten URL serves the locked bytes.
	for _, l := range strings.Split(string(explicit), "\n") {
		u, sum, ok := strings.Cut(l, "#sha256:")
		if !ok {
			continue
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		io.Copy(h, resp.Body)
		resp.Body.Close()
		if got := hex.EncodeToString(h.Sum(nil)); resp.StatusCode != 200 || got != sum {
			t.Fatalf("%s: status %d, sha256 %s, explicit file says %s", u, resp.StatusCode, got, sum)
		}
	}
	lf, err := lock.Read(filepath.Join(out, "ml.lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(lf.Environments) != 1 || lf.Environments["ml"] == nil || lf.Environments["ml"].Channels[0] != srv.URL+"/repo/mirror" {
		t.Fatalf("lock: %+v", lf.Environments)
	}

	for i, pl := range []string{Dataproc, EMR} {
		t.Run(pl, func(t *testing.T) {
			p := prefix
			if i > 0 {
				// sparkenv install patches the files for wherever it
				// installs: SPARKENV_PREFIX moves the environment.
				p = filepath.Join(t.TempDir(), "other")
			}
			root := t.TempDir()
			// No conda here: auto picks the sparkenv binary.
			log, err := run(t, filepath.Join(out, ScriptName[pl]), root, "SPARKENV_PREFIX="+p, "SPARKENV_INSTALLER=auto")
			if err != nil {
				t.Fatalf("%v\n%s", err, log)
			}
			if !strings.Contains(log, "installed environment ml into "+p+" (sparkenv)") {
				t.Fatalf("log:\n%s", log)
			}
			pyImport(t, p)
			if _, err := os.Stat(filepath.Join(root, "var", "lib", "sparkenv", "tmp", "ml", "pkgs")); !os.IsNotExist(err) {
				t.Fatalf("the package cache was left behind (%v)", err)
			}
			again, err := run(t, filepath.Join(out, ScriptName[pl]), root, "SPARKENV_PREFIX="+p)
			if err != nil || !strings.Contains(again, "unchanged: "+p) || strings.Contains(again, "installing") {
				t.Fatalf("second run (%v):\n%s", err, again)
			}
		})
	}
}

func TestChannelModeFailsOnATamperedPackage(t *testing.T) {
	t.Parallel()
	prefix := filepath.Join(t.TempDir(), "env")
	out, srv, pkgPath := channelSetup(t, prefix)
	srv.tamper(pkgPath)
	log, err := run(t, filepath.Join(out, ScriptName[Yandex]), t.TempDir())
	if err == nil {
		t.Fatalf("a tampered package was installed:\n%s", log)
	}
	t.Logf("tampered package:\n%s", log)
	if !strings.Contains(log, filepath.Base(pkgPath)) || !strings.Contains(log, "FAILED while installing ml") {
		t.Fatalf("the failure does not name the package %s:\n%s", filepath.Base(pkgPath), log)
	}
	if entries, _ := os.ReadDir(prefix); len(entries) != 0 {
		t.Fatalf("a partial environment was left in %s", prefix)
	}
}

func TestBuildIsDeterministicAndComplete(t *testing.T) {
	t.Parallel()
	img := builders.Input{Address: "target.squashfs.image", Kind: "squashfs", Name: "image", Dir: t.TempDir(),
		Manifest: artifact.Manifest{Files: []artifact.File{{Path: "image.sqfs", SHA256: strings.Repeat("ab", 32), Size: 42}}},
		Metadata: map[string]string{"main": "image.sqfs", "mount_point": "/opt/conda"}}
	via := receiptInput(t, publishers.Receipt{Items: []publishers.ReceiptItem{{Target: img.Address,
		Files: []publishers.PublishedFile{{Path: "image.sqfs", SHA256: strings.Repeat("ab", 32), Size: 42,
			URLs: map[string]string{"https": "https://b.example/image-abababababab.sqfs", "s3": "s3://b/image-abababababab.sqfs"}}}}}})
	var digests []string
	for i := 0; i < 2; i++ {
		out, res := build(t, &Config{Image: img.Address, Via: via.Address}, img, via)
		m, err := artifact.Scan(out)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range m.Files {
			names = append(names, f.Path)
		}
		if got := strings.Join(names, " "); got != "README.txt emr-bootstrap.sh gcp-dataproc-init.sh yandex-dataproc-init.sh" {
			t.Fatalf("files: %s", got)
		}
		if res.Metadata["mode"] != "image" {
			t.Fatalf("metadata %v", res.Metadata)
		}
		readme, _ := os.ReadFile(filepath.Join(out, "README.txt"))
		for _, want := range []string{"--initialization-actions gs://", "--bootstrap-actions Path=s3://", "s3a://", "https://b.example/image-abababababab.sqfs"} {
			if !bytes.Contains(readme, []byte(want)) {
				t.Fatalf("README.txt lacks %q:\n%s", want, readme)
			}
		}
		for _, n := range []string{"emr-bootstrap.sh", "gcp-dataproc-init.sh", "yandex-dataproc-init.sh"} {
			b, _ := os.ReadFile(filepath.Join(out, n))
			if !bytes.HasPrefix(b, []byte("#!/usr/bin/env bash\n")) || !bytes.Contains(b, []byte("\nset -euo pipefail\n")) {
				t.Fatalf("%s: header", n)
			}
			if info, _ := os.Stat(filepath.Join(out, n)); info.Mode()&0o111 == 0 {
				t.Fatalf("%s is not executable", n)
			}
		}
		digests = append(digests, m.Digest())
	}
	if digests[0] != digests[1] {
		t.Fatal("two builds differ")
	}
	// The s3 scheme goes through the aws cli.
	out, _ := build(t, &Config{Image: img.Address, Via: via.Address, URLScheme: "s3", Platforms: []string{EMR}}, img, via)
	b, _ := os.ReadFile(filepath.Join(out, "emr-bootstrap.sh"))
	if !bytes.Contains(b, []byte("IMAGE_URL='s3://b/image-abababababab.sqfs'")) {
		t.Fatal("s3 URL not used")
	}
}

func TestShellcheck(t *testing.T) {
	t.Parallel()
	sc := testutil.Tool(t, "shellcheck")
	img := builders.Input{Address: "target.squashfs.image", Kind: "squashfs", Name: "image", Dir: t.TempDir(),
		Manifest: artifact.Manifest{Files: []artifact.File{{Path: "image.sqfs", SHA256: strings.Repeat("cd", 32), Size: 1}}},
		Metadata: map[string]string{"main": "image.sqfs", "mount_point": "/opt/conda"}}
	env := &lock.Resolved{Name: "ml", Prefix: "/opt/env", Environment: &lock.Environment{Platform: "linux-64", Packages: []repodataRecord{
		{Name: "python", Version: "3.11.7", Subdir: "linux-64", FileName: "python-3.11.7-0.conda", URL: "https://x/linux-64/python-3.11.7-0.conda", SHA256: strings.Repeat("ef", 32)}}}}
	via := receiptInput(t, publishers.Receipt{Items: []publishers.ReceiptItem{
		{Target: img.Address, Files: []publishers.PublishedFile{{Path: "image.sqfs", URLs: map[string]string{"https": "https://b.example/i.sqfs"}}}},
		{Target: "target.conda_mirror.repo", Root: map[string]string{"https": "https://b.example/repo"}}}})
	imgOut, _ := build(t, &Config{Image: img.Address, Via: via.Address}, img, via)
	chOut, _ := build(t, &Config{Mirror: "target.conda_mirror.repo", Environment: "environment.ml", Via: via.Address, Installer: "auto"},
		envInput(t, env), via)
	scripts, _ := filepath.Glob(filepath.Join(imgOut, "*.sh"))
	more, _ := filepath.Glob(filepath.Join(chOut, "*.sh"))
	scripts = append(scripts, more...)
	if len(scripts) != 6 {
		t.Fatalf("%d scripts", len(scripts))
	}
	out, err := exec.Command(sc, append([]string{"--shell=bash", "--severity=style"}, scripts...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, out)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := []*Config{
		{Image: "target.squashfs.image", Via: "publish.s3.repo"},
		{Mirror: "target.conda_mirror.repo", Environment: "environment.ml", Via: "publish.s3.repo", Installer: "auto", Prefix: "/opt/x"},
		{Image: "target.squashfs.image", Via: "publish.s3.repo", Platforms: []string{"emr"}, URLScheme: "s3"},
	}
	for _, c := range ok {
		if err := New().Validate(c, "."); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	bad := map[string]*Config{
		"both":             {Image: "target.squashfs.image", Mirror: "target.conda_mirror.repo", Environment: "environment.ml", Via: "publish.s3.repo"},
		"neither":          {Via: "publish.s3.repo"},
		"mirror only":      {Mirror: "target.conda_mirror.repo", Via: "publish.s3.repo"},
		"no via":           {Image: "target.squashfs.image"},
		"via not publish":  {Image: "target.squashfs.image", Via: "target.x.y"},
		"platform":         {Image: "target.squashfs.image", Via: "publish.s3.repo", Platforms: []string{"azure"}},
		"platform twice":   {Image: "target.squashfs.image", Via: "publish.s3.repo", Platforms: []string{"emr", "emr"}},
		"scheme":           {Image: "target.squashfs.image", Via: "publish.s3.repo", URLScheme: "ftp"},
		"s3 channel":       {Mirror: "target.conda_mirror.repo", Environment: "environment.ml", Via: "publish.s3.repo", URLScheme: "s3"},
		"installer":        {Mirror: "target.conda_mirror.repo", Environment: "environment.ml", Via: "publish.s3.repo", Installer: "pip"},
		"relative prefix":  {Mirror: "target.conda_mirror.repo", Environment: "environment.ml", Via: "publish.s3.repo", Prefix: "opt/conda"},
		"quoted prefix":    {Mirror: "target.conda_mirror.repo", Environment: "environment.ml", Via: "publish.s3.repo", Prefix: "/opt/$(x)"},
		"prefix for image": {Image: "target.squashfs.image", Via: "publish.s3.repo", Prefix: "/opt/conda"},
		"bad sha":          {Mirror: "target.conda_mirror.repo", Environment: "environment.ml", Via: "publish.s3.repo", SparkenvSHA256: "xyz"},
		"bad url":          {Mirror: "target.conda_mirror.repo", Environment: "environment.ml", Via: "publish.s3.repo", SparkenvURL: "ftp://x"},
	}
	for name, c := range bad {
		if err := New().Validate(c, "."); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRewriteChecksTheMirror(t *testing.T) {
	t.Parallel()
	env := &lock.Environment{Platform: "linux-64", Channels: []string{"conda-forge"}, Packages: []repodataRecord{
		{Name: "a", Version: "1", URL: "https://conda.anaconda.org/conda-forge/linux-64/a-1-0.conda", SHA256: strings.Repeat("11", 32)},
		{Name: "b", Version: "2", Subdir: "noarch", FileName: "b-2-0.tar.bz2", URL: "file:///ch/noarch/b-2-0.tar.bz2", SHA256: strings.Repeat("22", 32)},
	}}
	mirror := builders.Input{Manifest: artifact.Manifest{Files: []artifact.File{
		{Path: "linux-64/a-1-0.conda", SHA256: strings.Repeat("11", 32)},
		{Path: "noarch/b-2-0.tar.bz2", SHA256: strings.Repeat("22", 32)},
	}}}
	got, err := Rewrite(env, "https://m.example/repo", mirror)
	if err != nil {
		t.Fatal(err)
	}
	if got.Packages[0].URL != "https://m.example/repo/linux-64/a-1-0.conda" || got.Packages[1].URL != "https://m.example/repo/noarch/b-2-0.tar.bz2" {
		t.Fatalf("urls: %s %s", got.Packages[0].URL, got.Packages[1].URL)
	}
	if env.Packages[0].URL == got.Packages[0].URL {
		t.Fatal("the input environment was modified")
	}
	mirror.Manifest.Files = mirror.Manifest.Files[:1]
	if _, err := Rewrite(env, "https://m.example/repo", mirror); err == nil || !strings.Contains(err.Error(), "noarch/b-2-0.tar.bz2") {
		t.Fatalf("missing package: %v", err)
	}
	mirror.Manifest.Files = []artifact.File{{Path: "linux-64/a-1-0.conda", SHA256: strings.Repeat("33", 32)}}
	if _, err := Rewrite(env, "https://m.example/repo", mirror); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("wrong digest: %v", err)
	}
}
