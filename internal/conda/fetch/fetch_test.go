package fetch

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// blob is a file the test server offers.
type blob struct {
	name string
	data []byte
}

func (b blob) sha() string {
	s := sha256.Sum256(b.data)
	return hex.EncodeToString(s[:])
}

func (b blob) item(base string) Item {
	return Item{URL: base + "/pkgs/" + b.name, SHA256: b.sha(), Size: int64(len(b.data)), FileName: b.name}
}

func makeBlob(name string, size int, seed uint64) blob {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return blob{name, b}
}

// pkgServer serves blobs under /pkgs/, with hooks to misbehave, and counts
// what it was asked.
type pkgServer struct {
	*httptest.Server
	mu       sync.Mutex
	blobs    map[string][]byte
	requests map[string]int
	ranges   []string // Range header of each request, "" for none
	inFlight int32
	maxIn    int32
	delay    time.Duration
	// before may answer a request itself (returning true)
	before func(w http.ResponseWriter, r *http.Request, n int) bool
}

func newPkgServer(t *testing.T, blobs ...blob) *pkgServer {
	s := &pkgServer{blobs: map[string][]byte{}, requests: map[string]int{}}
	for _, b := range blobs {
		s.blobs[b.name] = b.data
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *pkgServer) serve(w http.ResponseWriter, r *http.Request) {
	n := atomic.AddInt32(&s.inFlight, 1)
	defer atomic.AddInt32(&s.inFlight, -1)
	for {
		m := atomic.LoadInt32(&s.maxIn)
		if n <= m || atomic.CompareAndSwapInt32(&s.maxIn, m, n) {
			break
		}
	}
	name := strings.TrimPrefix(r.URL.Path, "/pkgs/")
	s.mu.Lock()
	s.requests[name]++
	count := s.requests[name]
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	data, ok := s.blobs[name]
	before := s.before
	s.mu.Unlock()
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	if before != nil && before(w, r, count) {
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, name, time.Unix(1600000000, 0), bytes.NewReader(data))
}

func (s *pkgServer) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[name]
}

func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: content differs (%d bytes, want %d)", path, len(got), len(want))
	}
}

func TestFetchParallel(t *testing.T) {
	t.Parallel()
	var blobs []blob
	for i := range 40 {
		blobs = append(blobs, makeBlob(fmt.Sprintf("pkg%02d-1.0-0.conda", i), 1000+i*997, uint64(i)))
	}
	srv := newPkgServer(t, blobs...)
	srv.delay = 20 * time.Millisecond
	var items []Item
	for _, b := range blobs {
		items = append(items, b.item(srv.URL))
	}
	c := &Cache{Dir: t.TempDir()}
	var mu sync.Mutex
	kinds := map[EventKind]int{}
	opts := Options{Jobs: 6, Progress: func(e Event) {
		mu.Lock()
		kinds[e.Kind]++
		mu.Unlock()
	}}
	paths, err := c.Fetch(context.Background(), items, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range blobs {
		want := filepath.Join(c.Dir, "sha256", b.sha()[:2], b.sha(), b.name)
		if paths[i] != want {
			t.Fatalf("path %d = %s, want %s", i, paths[i], want)
		}
		checkFile(t, paths[i], b.data)
	}
	if m := atomic.LoadInt32(&srv.maxIn); m < 2 || m > 6 {
		t.Fatalf("%d downloads ran at once, want 2..6", m)
	}
	if kinds[EventDone] != 40 || kinds[EventStart] != 40 {
		t.Fatalf("events %v", kinds)
	}
	// everything cached now: no request at all
	clear(kinds)
	srv.delay = 0
	before := len(srv.ranges)
	again, err := c.Fetch(context.Background(), items, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(srv.ranges) != before || kinds[EventCached] != 40 {
		t.Fatalf("second fetch: %d requests, events %v", len(srv.ranges)-before, kinds)
	}
	for i := range paths {
		if again[i] != paths[i] {
			t.Fatalf("second fetch path %s", again[i])
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(c.Dir, "partial")); len(entries) != 0 {
		t.Fatalf("partial files left: %v", entries)
	}
}

func TestFetchRetries(t *testing.T) {
	t.Parallel()
	b := makeBlob("flaky-1-0.conda", 5000, 7)
	srv := newPkgServer(t, b)
	srv.before = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if !strings.HasPrefix(r.URL.Path, "/pkgs/flaky") {
			return false
		}
		switch n {
		case 1:
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case 2:
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case 3:
			http.Error(w, "oops", http.StatusBadGateway)
		default:
			return false
		}
		return true
	}
	c := &Cache{Dir: t.TempDir()}
	var retries atomic.Int32
	paths, err := c.Fetch(context.Background(), []Item{b.item(srv.URL)}, Options{RetryDelay: time.Millisecond,
		Progress: func(e Event) {
			if e.Kind == EventRetry {
				retries.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, paths[0], b.data)
	if srv.count(b.name) != 4 || retries.Load() != 3 {
		t.Fatalf("%d requests, %d retries", srv.count(b.name), retries.Load())
	}

	// too few retries: the error names the package and URL
	b2 := makeBlob("flaky2-1-0.conda", 100, 8)
	srv.mu.Lock()
	srv.blobs[b2.name] = b2.data
	srv.mu.Unlock()
	_, err = c.Fetch(context.Background(), []Item{b2.item(srv.URL)}, Options{Retries: 1, RetryDelay: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), b2.name) || !strings.Contains(err.Error(), srv.URL+"/pkgs/"+b2.name) ||
		!strings.Contains(err.Error(), "429") {
		t.Fatalf("exhausted retries: %v", err)
	}

	// a 404 is not retried
	missing := Item{URL: srv.URL + "/pkgs/nope-1-0.conda", SHA256: b.sha()[:62] + "00"}
	_, err = c.Fetch(context.Background(), []Item{missing}, Options{RetryDelay: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "404") || srv.count("nope-1-0.conda") != 1 {
		t.Fatalf("404: %v (%d requests)", err, srv.count("nope-1-0.conda"))
	}
}

func TestFetchResumesCutDownload(t *testing.T) {
	t.Parallel()
	b := makeBlob("big-1-0.tar.bz2", 300_000, 9)
	half := 123_456
	srv := newPkgServer(t, b)
	srv.before = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n != 1 {
			return false
		}
		// announce the whole file, send part of it, then drop the connection
		w.Header().Set("Content-Length", fmt.Sprint(len(b.data)))
		w.Header().Set("Accept-Ranges", "bytes")
		w.WriteHeader(http.StatusOK)
		w.Write(b.data[:half])
		w.(http.Flusher).Flush()
		time.Sleep(50 * time.Millisecond)
		panic(http.ErrAbortHandler)
	}
	c := &Cache{Dir: t.TempDir()}
	paths, err := c.Fetch(context.Background(), []Item{b.item(srv.URL)}, Options{RetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, paths[0], b.data)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	want := []string{"", fmt.Sprintf("bytes=%d-", half)}
	if fmt.Sprint(srv.ranges) != fmt.Sprint(want) {
		t.Fatalf("Range headers %q, want %q", srv.ranges, want)
	}
}

// A partial file left by an earlier process is resumed; a corrupt one is
// detected after resuming and the download starts over.
func TestFetchResumesPartialFromEarlierProcess(t *testing.T) {
	t.Parallel()
	b := makeBlob("left-1-0.conda", 50_000, 10)
	for _, tc := range []struct {
		name   string
		prefix []byte
		ranges []string
	}{
		{"good prefix", b.data[:20_000], []string{"bytes=20000-", ""}[:1]},
		{"corrupt prefix", bytes.Repeat([]byte{'x'}, 20_000), []string{"bytes=20000-", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newPkgServer(t, b)
			c := &Cache{Dir: t.TempDir()}
			it := b.item(srv.URL)
			k, _ := itemKey(it)
			part := filepath.Join(c.Dir, "partial", k.id()+"-"+k.file+".part")
			if err := os.MkdirAll(filepath.Dir(part), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(part, tc.prefix, 0o644); err != nil {
				t.Fatal(err)
			}
			paths, err := c.Fetch(context.Background(), []Item{it}, Options{RetryDelay: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			checkFile(t, paths[0], b.data)
			if fmt.Sprint(srv.ranges) != fmt.Sprint(tc.ranges) {
				t.Fatalf("Range headers %q, want %q", srv.ranges, tc.ranges)
			}
		})
	}
}

func TestFetchRejectsWrongChecksum(t *testing.T) {
	t.Parallel()
	b := makeBlob("bad-1-0.conda", 4096, 11)
	srv := newPkgServer(t, b)
	c := &Cache{Dir: t.TempDir()}
	other := makeBlob("x", 10, 12).sha()
	for _, it := range []Item{
		{URL: srv.URL + "/pkgs/" + b.name, SHA256: other, FileName: b.name},
		{URL: srv.URL + "/pkgs/" + b.name, SHA256: b.sha(), Size: 4000, FileName: b.name},
		{URL: srv.URL + "/pkgs/" + b.name, MD5: strings.Repeat("ab", 16), FileName: b.name},
	} {
		_, err := c.Fetch(context.Background(), []Item{it}, Options{RetryDelay: time.Millisecond})
		if err == nil || !strings.Contains(err.Error(), b.name) || !strings.Contains(err.Error(), it.URL) ||
			!errors.Is(err, errMismatch) {
			t.Fatalf("item %+v: %v", it, err)
		}
		if p, ok := c.Lookup(it); ok {
			t.Fatalf("bad file placed in the cache at %s", p)
		}
	}
	// nothing anywhere but empty bookkeeping directories
	filepath.WalkDir(c.Dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasSuffix(p, ".lock") {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
	if srv.count(b.name) != 3 {
		t.Fatalf("a fresh mismatch must not be retried: %d requests", srv.count(b.name))
	}
}

func TestFetchMD5Only(t *testing.T) {
	t.Parallel()
	b := makeBlob("old-1-0.tar.bz2", 2048, 13)
	srv := newPkgServer(t, b)
	c := &Cache{Dir: t.TempDir()}
	sum := md5.Sum(b.data)
	it := Item{URL: srv.URL + "/pkgs/" + b.name, MD5: hex.EncodeToString(sum[:])}
	paths, err := c.Fetch(context.Background(), []Item{it}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, paths[0], b.data)
	if !strings.Contains(paths[0], filepath.Join("md5", it.MD5[:2], it.MD5, b.name)) {
		t.Fatalf("md5 path %s", paths[0])
	}
	for _, bad := range []Item{
		{URL: srv.URL + "/pkgs/" + b.name},
		{URL: srv.URL + "/pkgs/" + b.name, SHA256: "abc"},
		{URL: srv.URL + "/pkgs/x", SHA256: b.sha(), FileName: "../evil"},
		{URL: srv.URL + "/", SHA256: b.sha()},
	} {
		if _, err := c.Fetch(context.Background(), []Item{bad}, Options{}); err == nil {
			t.Errorf("item %+v accepted", bad)
		}
	}
}

func TestFetchOffline(t *testing.T) {
	t.Parallel()
	b := makeBlob("off-1-0.conda", 1000, 14)
	srv := newPkgServer(t, b)
	c := &Cache{Dir: t.TempDir()}
	it := b.item(srv.URL)
	_, err := c.Fetch(context.Background(), []Item{it}, Options{Offline: true})
	if err == nil || !strings.Contains(err.Error(), "offline") || !strings.Contains(err.Error(), it.URL) {
		t.Fatalf("offline miss: %v", err)
	}
	if srv.count(b.name) != 0 {
		t.Fatal("offline fetch asked the server")
	}
	if _, err := c.Fetch(context.Background(), []Item{it}, Options{}); err != nil {
		t.Fatal(err)
	}
	paths, err := c.Fetch(context.Background(), []Item{it}, Options{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, paths[0], b.data)
	if srv.count(b.name) != 1 {
		t.Fatalf("%d requests", srv.count(b.name))
	}
}

func TestFetchSameFileFromGoroutines(t *testing.T) {
	t.Parallel()
	b := makeBlob("shared-1-0.conda", 100_000, 15)
	srv := newPkgServer(t, b)
	srv.delay = 100 * time.Millisecond
	c := &Cache{Dir: t.TempDir()}
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// each goroutine its own Cache value, as separate callers would have
			cc := &Cache{Dir: c.Dir}
			paths, err := cc.Fetch(context.Background(), []Item{b.item(srv.URL), b.item(srv.URL)}, Options{})
			if err == nil && (paths[0] != paths[1]) {
				err = fmt.Errorf("paths differ: %v", paths)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := srv.count(b.name); n != 1 {
		t.Fatalf("%d downloads of one file", n)
	}
}

// TestHelperProcess is not a test: TestFetchSameFileFromProcesses runs the
// test binary again with it to get a second process using the cache.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv("FETCH_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	it := Item{URL: os.Getenv("FETCH_HELPER_URL"), SHA256: os.Getenv("FETCH_HELPER_SHA")}
	paths, err := (&Cache{Dir: dir}).Fetch(context.Background(), []Item{it}, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Println("PATH=" + paths[0])
}

func TestFetchSameFileFromProcesses(t *testing.T) {
	t.Parallel()
	b := makeBlob("multi-1-0.conda", 200_000, 16)
	srv := newPkgServer(t, b)
	srv.delay = 300 * time.Millisecond
	dir := t.TempDir()
	it := b.item(srv.URL)
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "FETCH_HELPER_DIR="+dir, "FETCH_HELPER_URL="+it.URL, "FETCH_HELPER_SHA="+it.SHA256)
		out := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		outs = append(outs, out)
	}
	// and this process too, at the same time
	paths, err := (&Cache{Dir: dir}).Fetch(context.Background(), []Item{it}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper %d: %v\n%s", i, err, outs[i])
		}
		if !strings.Contains(outs[i].String(), "PATH="+paths[0]+"\n") {
			t.Fatalf("helper %d output:\n%s", i, outs[i])
		}
	}
	checkFile(t, paths[0], b.data)
	if n := srv.count(b.name); n != 1 {
		t.Fatalf("%d downloads of one file by three processes", n)
	}
}

func TestFetchFileAndS3(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	b := makeBlob("local-1-0.conda", 3000, 17)
	if err := os.MkdirAll(filepath.Join(src, "noarch"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "noarch", b.name), b.data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := &Cache{Dir: t.TempDir()}
	fileItem := Item{URL: "file://" + filepath.ToSlash(src) + "/noarch/" + b.name, SHA256: b.sha()}
	s3 := &dirS3{dir: src}
	s3Item := Item{URL: "s3://bucket/noarch/" + b.name, SHA256: b.sha(), FileName: b.name}
	paths, err := c.Fetch(context.Background(), []Item{fileItem}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, paths[0], b.data)
	c2 := &Cache{Dir: t.TempDir()}
	paths, err = c2.Fetch(context.Background(), []Item{s3Item}, Options{S3: s3})
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, paths[0], b.data)
	if s3.gets.Load() != 1 {
		t.Fatalf("%d S3 gets", s3.gets.Load())
	}
	missing := Item{URL: "s3://bucket/noarch/none.conda", SHA256: b.sha()}
	if _, err := c2.Fetch(context.Background(), []Item{missing}, Options{S3: s3, RetryDelay: time.Millisecond}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing S3 object: %v", err)
	}
	if _, err := (&Cache{Dir: t.TempDir()}).Fetch(context.Background(), []Item{s3Item}, Options{}); err == nil {
		t.Fatal("s3 without a client succeeded")
	}
}

type dirS3 struct {
	dir  string
	gets atomic.Int32
}

func (s *dirS3) GetObject(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
	s.gets.Add(1)
	return os.Open(filepath.Join(s.dir, filepath.FromSlash(key)))
}

func TestFetchCancel(t *testing.T) {
	t.Parallel()
	b := makeBlob("slow-1-0.conda", 1000, 18)
	srv := newPkgServer(t, b)
	srv.delay = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := (&Cache{Dir: t.TempDir()}).Fetch(ctx, []Item{b.item(srv.URL)}, Options{})
	if err == nil || time.Since(start) > time.Second || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled fetch: %v after %v", err, time.Since(start))
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	b := makeBlob("v", 100, 19)
	p := filepath.Join(t.TempDir(), "v")
	if err := os.WriteFile(p, b.data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Verify(p, strings.ToUpper(b.sha())); err != nil {
		t.Fatal(err)
	}
	if err := Verify(p, makeBlob("w", 100, 20).sha()); err == nil {
		t.Fatal("wrong sha256 verified")
	}
}

func TestExtracted(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	c := &Cache{Dir: t.TempDir(), Extract: func(ctx context.Context, archive, dest string) error {
		calls.Add(1)
		time.Sleep(50 * time.Millisecond)
		if strings.HasSuffix(archive, "broken") {
			os.WriteFile(filepath.Join(dest, "half"), nil, 0o644)
			return errors.New("corrupt archive")
		}
		return os.WriteFile(filepath.Join(dest, "info.txt"), []byte(archive), 0o644)
	}}
	sum := makeBlob("e", 10, 21).sha()
	var wg sync.WaitGroup
	dirs := make([]string, 4)
	errs := make([]error, 4)
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs[i], errs[i] = c.Extracted(context.Background(), "/archives/e.conda", sum)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if d != filepath.Join(c.Dir, "extracted", sum) {
			t.Fatalf("dir %s", d)
		}
	}
	checkFile(t, filepath.Join(dirs[0], "info.txt"), []byte("/archives/e.conda"))
	if calls.Load() != 1 {
		t.Fatalf("extracted %d times", calls.Load())
	}
	other := makeBlob("f", 10, 22).sha()
	if _, err := c.Extracted(context.Background(), "/archives/broken", other); err == nil || !strings.Contains(err.Error(), "/archives/broken") {
		t.Fatalf("broken archive: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(c.Dir, "extracted"))
	if len(entries) != 1 {
		t.Fatalf("extracted/ holds %d entries after a failed extraction", len(entries))
	}
	if _, err := (&Cache{Dir: t.TempDir()}).Extracted(context.Background(), "/a", other); err == nil {
		t.Fatal("no extractor: succeeded")
	}
}

// Without a known size, a partial file that is in fact complete gets a 416
// from the server and is recognised by its checksum; one that is longer than
// the file is thrown away.
func TestFetchRangeNotSatisfiable(t *testing.T) {
	t.Parallel()
	b := makeBlob("whole-1-0.conda", 10_000, 23)
	for _, tc := range []struct {
		name     string
		part     []byte
		requests int
	}{
		{"complete", b.data, 1},
		{"too long", append(slices.Clone(b.data), "junk"...), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newPkgServer(t, b)
			c := &Cache{Dir: t.TempDir()}
			it := b.item(srv.URL)
			it.Size = 0
			k, _ := itemKey(it)
			part := filepath.Join(c.Dir, "partial", k.id()+"-"+k.file+".part")
			os.MkdirAll(filepath.Dir(part), 0o755)
			if err := os.WriteFile(part, tc.part, 0o644); err != nil {
				t.Fatal(err)
			}
			paths, err := c.Fetch(context.Background(), []Item{it}, Options{RetryDelay: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			checkFile(t, paths[0], b.data)
			if n := srv.count(b.name); n != tc.requests {
				t.Fatalf("%d requests (ranges %q), want %d", n, srv.ranges, tc.requests)
			}
		})
	}
}
