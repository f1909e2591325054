package channel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparkenv/sparkenv/internal/conda/repodata"
	"github.com/sparkenv/sparkenv/internal/testutil"
)

func TestParseChannel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, alias string
		want      Channel
	}{
		{"conda-forge", "", Channel{"conda-forge", "https://conda.anaconda.org/conda-forge"}},
		{"pytorch/label/nightly/", "", Channel{"pytorch/label/nightly", "https://conda.anaconda.org/pytorch/label/nightly"}},
		{"conda-forge", "https://mirror.example.org/conda/", Channel{"conda-forge", "https://mirror.example.org/conda/conda-forge"}},
		{"https://conda.anaconda.org/bioconda/", "", Channel{"bioconda", "https://conda.anaconda.org/bioconda"}},
		{"https://repo.example.org/main", "", Channel{"https://repo.example.org/main", "https://repo.example.org/main"}},
		{"http://127.0.0.1:8080/ch", "", Channel{"http://127.0.0.1:8080/ch", "http://127.0.0.1:8080/ch"}},
		{"file:///srv/channel/", "", Channel{"file:///srv/channel", "file:///srv/channel"}},
		{"/srv/my channel/", "", Channel{"file:///srv/my%20channel", "file:///srv/my%20channel"}},
		{"s3://bucket/prefix/ch", "", Channel{"s3://bucket/prefix/ch", "s3://bucket/prefix/ch"}},
	} {
		got, err := ParseChannel(tc.in, tc.alias)
		if err != nil {
			t.Errorf("ParseChannel(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseChannel(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", "./local", "../x", "ftp://host/x", "s3:///x", "https:///x", "file://host/x",
		"conda forge", "a//b", "a/../b", "https://h/x?token=1", "conda-forge::numpy"} {
		if c, err := ParseChannel(bad, ""); err == nil {
			t.Errorf("ParseChannel(%q) = %+v, want an error", bad, c)
		}
	}
	ch, _ := ParseChannel("conda-forge", "")
	if got := ch.SubdirURL("noarch"); got != "https://conda.anaconda.org/conda-forge/noarch/" {
		t.Errorf("SubdirURL: %s", got)
	}
}

// server serves a directory with ETags and counts requests per path, like a
// CDN in front of a channel.
type server struct {
	*httptest.Server
	dir string
	mu  sync.Mutex
	// requests per path; conditional ones also counted in revalidated
	requests    map[string]int
	revalidated map[string]int
	notModified map[string]int
	failFirst   int // answer 503 to this many requests first
	// forbidMissing answers 403 for missing files, as a private bucket does
	forbidMissing bool
}

func newServer(t *testing.T, dir string) *server {
	s := &server{dir: dir, requests: map[string]int{}, revalidated: map[string]int{}, notModified: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests[r.URL.Path]++
	if r.Header.Get("If-None-Match") != "" {
		s.revalidated[r.URL.Path]++
	}
	fail := s.failFirst > 0
	if fail {
		s.failFirst--
	}
	s.mu.Unlock()
	if fail {
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	b, err := os.ReadFile(filepath.Join(s.dir, filepath.FromSlash(r.URL.Path)))
	if err != nil {
		if s.forbidMissing {
			http.Error(w, "AccessDenied", http.StatusForbidden)
			return
		}
		http.NotFound(w, r)
		return
	}
	sum := sha256.Sum256(b)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		s.mu.Lock()
		s.notModified[r.URL.Path]++
		s.mu.Unlock()
	}
	http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(b)))
}

func (s *server) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

func (s *server) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.requests {
		n += c
	}
	return n
}

// pytorch returns the records of the real pytorch snapshot.
func pytorch(t *testing.T) []repodata.Record {
	t.Helper()
	b, err := os.ReadFile(testutil.CondaData(t, "pytorch-linux-64.repodata.json"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := repodata.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return r.Records()
}

func writeChannel(t *testing.T, dir string, recs []repodata.Record, opts repodata.WriteOptions) {
	t.Helper()
	if err := repodata.Write(dir, "linux-64", recs, opts); err != nil {
		t.Fatal(err)
	}
	noarch := []repodata.Record{{Name: "tiny", Version: "1", Build: "0", FileName: "tiny-1-0.conda", Depends: []string{}}}
	if err := repodata.Write(dir, "noarch", noarch, opts); err != nil {
		t.Fatal(err)
	}
}

func checkRecords(t *testing.T, got *repodata.Repodata, want []repodata.Record, ch Channel, pkgBase string) {
	t.Helper()
	recs := got.Records()
	if len(recs) != len(want) {
		t.Fatalf("got %d records, want %d", len(recs), len(want))
	}
	for i := range recs {
		if recs[i].URL != pkgBase+recs[i].FileName || recs[i].Channel != ch.Name {
			t.Fatalf("record %s: URL %q channel %q", recs[i].FileName, recs[i].URL, recs[i].Channel)
		}
		recs[i].URL, recs[i].Channel = "", ""
	}
	if d := cmp.Diff(want, recs); d != "" {
		t.Fatalf("records (-want +got):\n%s", d)
	}
}

func TestFetchRevalidatesWithETag(t *testing.T) {
	t.Parallel()
	recs := pytorch(t)
	dir := t.TempDir()
	writeChannel(t, dir, recs, repodata.WriteOptions{Zst: true})
	srv := newServer(t, dir)
	ch, err := ParseChannel(srv.URL+"/", "")
	if err != nil {
		t.Fatal(err)
	}
	f := &Fetcher{CacheDir: t.TempDir()}
	ctx := context.Background()
	first, err := f.Repodata(ctx, ch, "linux-64")
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, first, recs, ch, srv.URL+"/linux-64/")
	const zst = "/linux-64/repodata.json.zst"
	if srv.count(zst) != 1 || srv.count("/linux-64/repodata.json") != 0 {
		t.Fatalf("first fetch requests: %v", srv.requests)
	}

	second, err := f.Repodata(ctx, ch, "linux-64")
	if err != nil {
		t.Fatal(err)
	}
	if srv.count(zst) != 2 || srv.revalidated[zst] != 1 || srv.notModified[zst] != 1 {
		t.Fatalf("second fetch: requests %v, conditional %v, 304 %v", srv.requests, srv.revalidated, srv.notModified)
	}
	if d := cmp.Diff(first, second); d != "" {
		t.Fatalf("revalidated content differs:\n%s", d)
	}

	// a changed index is downloaded again and replaces the cached one
	changed := append(recs[:len(recs):len(recs)], repodata.Record{Name: "zzz", Version: "1", Build: "0",
		FileName: "zzz-1-0.conda", Depends: []string{}, Subdir: "linux-64"})
	writeChannel(t, dir, changed, repodata.WriteOptions{Zst: true})
	third, err := f.Repodata(ctx, ch, "linux-64")
	if err != nil {
		t.Fatal(err)
	}
	if len(third.Records()) != len(recs)+1 || srv.notModified[zst] != 1 {
		t.Fatalf("changed index: %d records, 304s %v", len(third.Records()), srv.notModified)
	}

	// offline: the cache answers and the server hears nothing
	before := srv.total()
	off := &Fetcher{CacheDir: f.CacheDir, Offline: true}
	fourth, err := off.Repodata(ctx, ch, "linux-64")
	if err != nil {
		t.Fatal(err)
	}
	if srv.total() != before || len(fourth.Records()) != len(recs)+1 {
		t.Fatalf("offline fetch: %d new requests, %d records", srv.total()-before, len(fourth.Records()))
	}
	_, err = off.Repodata(ctx, ch, "osx-64")
	if err == nil || !strings.Contains(err.Error(), srv.URL+"/osx-64/repodata.json") || !strings.Contains(err.Error(), "offline") {
		t.Fatalf("offline miss: %v", err)
	}
	noCache := &Fetcher{Offline: true}
	if _, err := noCache.Repodata(ctx, ch, "noarch"); err == nil {
		t.Fatal("offline without a cache succeeded")
	}
}

func TestFetchFallbacks(t *testing.T) {
	t.Parallel()
	recs := pytorch(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		opts   repodata.WriteOptions
		remove []string
		want   string // the file that must have served the index
	}{
		{"json only", repodata.WriteOptions{}, nil, "/linux-64/repodata.json"},
		{"shards only", repodata.WriteOptions{Shards: true}, []string{"repodata.json"}, "/linux-64/" + repodata.ShardIndexFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeChannel(t, dir, recs, tc.opts)
			for _, sd := range []string{"linux-64", "noarch"} {
				for _, rm := range tc.remove {
					if err := os.Remove(filepath.Join(dir, sd, rm)); err != nil {
						t.Fatal(err)
					}
				}
			}
			srv := newServer(t, dir)
			ch, _ := ParseChannel(srv.URL, "")
			f := &Fetcher{CacheDir: t.TempDir()}
			got, err := f.Repodata(ctx, ch, "linux-64")
			if err != nil {
				t.Fatal(err)
			}
			checkRecords(t, got, recs, ch, srv.URL+"/linux-64/")
			if srv.count(tc.want) != 1 {
				t.Fatalf("requests: %v", srv.requests)
			}
			// a second fetch reuses cached shards: only the index is asked for again
			n := srv.total()
			if _, err := f.Repodata(ctx, ch, "linux-64"); err != nil {
				t.Fatal(err)
			}
			if got := srv.total() - n; got > len(indexFiles) {
				t.Fatalf("second fetch made %d requests", got)
			}
			if tc.opts.Shards {
				off := &Fetcher{CacheDir: f.CacheDir, Offline: true}
				again, err := off.Repodata(ctx, ch, "linux-64")
				if err != nil {
					t.Fatalf("offline from cached shards: %v", err)
				}
				checkRecords(t, again, recs, ch, srv.URL+"/linux-64/")
			}
		})
	}
}

func TestFetchMissingSubdir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeChannel(t, dir, nil, repodata.WriteOptions{})
	srv := newServer(t, dir)
	ch, _ := ParseChannel(srv.URL, "")
	f := &Fetcher{CacheDir: t.TempDir()}
	_, err := f.Repodata(context.Background(), ch, "win-64")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), srv.URL+"/win-64/repodata.json") {
		t.Fatalf("missing subdir: %v", err)
	}
	r, err := f.RepodataOptional(context.Background(), ch, "win-64")
	if r != nil || err != nil {
		t.Fatalf("optional missing subdir: %v, %v", r, err)
	}
	r, err = f.RepodataOptional(context.Background(), ch, "noarch")
	if err != nil || len(r.Records()) != 1 {
		t.Fatalf("optional present subdir: %v", err)
	}

	// offline, a subdir seen missing stays missing; one never fetched is
	// an error, not silently absent
	off := &Fetcher{CacheDir: f.CacheDir, Offline: true}
	if r, err := off.RepodataOptional(context.Background(), ch, "win-64"); r != nil || err != nil {
		t.Fatalf("offline optional known-missing subdir: %v, %v", r, err)
	}
	_, err = off.RepodataOptional(context.Background(), ch, "osx-64")
	if !errors.Is(err, ErrNotCached) || errors.Is(err, ErrNotFound) {
		t.Fatalf("offline optional never-fetched subdir: %v", err)
	}
	// and the negative entry does not stop a later online fetch
	if err := repodata.Write(dir, "win-64", nil, repodata.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if r, err := f.Repodata(context.Background(), ch, "win-64"); err != nil || len(r.Records()) != 0 {
		t.Fatalf("subdir that appeared: %v", err)
	}
}

func TestFetchForbiddenMeansAbsentForOptionalForms(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeChannel(t, dir, nil, repodata.WriteOptions{})
	srv := newServer(t, dir)
	srv.forbidMissing = true
	ch, _ := ParseChannel(srv.URL, "")
	f := &Fetcher{}
	r, err := f.Repodata(context.Background(), ch, "noarch")
	if err != nil || len(r.Records()) != 1 {
		t.Fatalf("403 for repodata.json.zst: %v", err)
	}
	// but a 403 for repodata.json itself is an error, not a missing subdir
	_, err = f.Repodata(context.Background(), ch, "win-64")
	if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "403") {
		t.Fatalf("403 for repodata.json: %v", err)
	}
}

func TestFetchRetries(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeChannel(t, dir, nil, repodata.WriteOptions{Zst: true})
	srv := newServer(t, dir)
	srv.failFirst = 2
	ch, _ := ParseChannel(srv.URL, "")
	f := &Fetcher{RetryDelay: time.Millisecond}
	r, err := f.Repodata(context.Background(), ch, "noarch")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Records()) != 1 || srv.count("/noarch/repodata.json.zst") != 3 {
		t.Fatalf("requests %v", srv.requests)
	}
	srv.failFirst = 100
	f.Retries = 2
	_, err = f.Repodata(context.Background(), ch, "noarch")
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), srv.URL+"/noarch/repodata.json.zst") {
		t.Fatalf("persistent 503: %v", err)
	}
}

func TestFetchBaseURL(t *testing.T) {
	t.Parallel()
	recs := []repodata.Record{{Name: "a", Version: "1", Build: "0", FileName: "a-1-0.conda", Depends: []string{}, Subdir: "linux-64"}}
	dir := t.TempDir()
	if err := repodata.Write(dir, "linux-64", recs, repodata.WriteOptions{BaseURL: "../../files/linux-64"}); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, dir)
	ch, _ := ParseChannel(srv.URL+"/", "")
	r, err := (&Fetcher{}).Repodata(context.Background(), ch, "linux-64")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Records()[0].URL; got != srv.URL+"/files/linux-64/a-1-0.conda" {
		t.Fatalf("URL with base_url: %s", got)
	}
}

func TestFetchFileChannel(t *testing.T) {
	t.Parallel()
	recs := pytorch(t)
	dir := t.TempDir()
	writeChannel(t, dir, recs, repodata.WriteOptions{Zst: true})
	ch, err := ParseChannel(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	f := &Fetcher{CacheDir: cache, Offline: true} // offline does not concern local files
	r, err := f.Repodata(context.Background(), ch, "linux-64")
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, r, recs, ch, "file://"+filepath.ToSlash(dir)+"/linux-64/")
	if entries, _ := os.ReadDir(cache); len(entries) != 0 {
		t.Fatalf("file channel was cached: %v", entries)
	}
	if _, err := f.Repodata(context.Background(), ch, "osx-arm64"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing local subdir: %v", err)
	}
	if _, err := f.Repodata(context.Background(), ch, "../linux-64"); err == nil {
		t.Fatal("subdir with a path accepted")
	}

	// a shards-only local channel: read from disk, nothing cached either
	sharded := t.TempDir()
	writeChannel(t, sharded, recs, repodata.WriteOptions{Shards: true})
	if err := os.Remove(filepath.Join(sharded, "linux-64", "repodata.json")); err != nil {
		t.Fatal(err)
	}
	sch, _ := ParseChannel(sharded, "")
	r, err = f.Repodata(context.Background(), sch, "linux-64")
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, r, recs, sch, "file://"+filepath.ToSlash(sharded)+"/linux-64/")
	if entries, _ := os.ReadDir(cache); len(entries) != 0 {
		t.Fatalf("file channel shards were cached: %v", entries)
	}
}

// dirS3 serves a directory as bucket "b", counting calls.
type dirS3 struct {
	dir         string
	mu          sync.Mutex
	gets, heads int
}

func (s *dirS3) path(bucket, key string) (string, error) {
	if bucket != "b" {
		return "", fmt.Errorf("no bucket %s: %w", bucket, fs.ErrNotExist)
	}
	return filepath.Join(s.dir, filepath.FromSlash(key)), nil
}

func (s *dirS3) GetObject(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
	s.mu.Lock()
	s.gets++
	s.mu.Unlock()
	p, err := s.path(bucket, key)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

func (s *dirS3) HeadETag(ctx context.Context, bucket, key string) (string, error) {
	s.mu.Lock()
	s.heads++
	s.mu.Unlock()
	p, err := s.path(bucket, key)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

func TestFetchS3Channel(t *testing.T) {
	t.Parallel()
	recs := pytorch(t)
	dir := t.TempDir()
	writeChannel(t, filepath.Join(dir, "prefix"), recs, repodata.WriteOptions{Zst: true})
	s3 := &dirS3{dir: dir}
	ch, err := ParseChannel("s3://b/prefix", "")
	if err != nil {
		t.Fatal(err)
	}
	f := &Fetcher{CacheDir: t.TempDir(), S3: s3}
	for i := range 2 {
		r, err := f.Repodata(context.Background(), ch, "linux-64")
		if err != nil {
			t.Fatal(err)
		}
		checkRecords(t, r, recs, ch, "s3://b/prefix/linux-64/")
		if s3.gets != 1 || s3.heads != i+1 {
			t.Fatalf("fetch %d: %d gets, %d heads", i, s3.gets, s3.heads)
		}
	}
	if _, err := f.Repodata(context.Background(), ch, "win-64"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing s3 subdir: %v", err)
	}
	if _, err := (&Fetcher{}).Repodata(context.Background(), ch, "linux-64"); err == nil || !strings.Contains(err.Error(), "S3") {
		t.Fatalf("s3 without client: %v", err)
	}
}
