package channel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sparkenv/sparkenv/internal/conda/repodata"
	"github.com/sparkenv/sparkenv/internal/fsutil"
)

// ErrNotFound is wrapped by errors for a subdir the channel does not have.
var ErrNotFound = errors.New("not found")

// ErrNotCached is wrapped by errors for an index an offline Fetcher has no
// copy of.
var ErrNotCached = errors.New("not in the cache")

// S3Getter reads objects of s3:// channels. A missing object must be
// reported as an error wrapping fs.ErrNotExist.
type S3Getter interface {
	GetObject(ctx context.Context, bucket, key string) (io.ReadCloser, error)
}

// S3ETagger is optionally implemented by an S3Getter: with it, a cached
// object is revalidated by its ETag instead of downloaded again.
type S3ETagger interface {
	HeadETag(ctx context.Context, bucket, key string) (string, error)
}

// Fetcher fetches repodata. The zero value fetches over HTTP without a
// cache.
type Fetcher struct {
	Client *http.Client // nil: http.DefaultClient
	// CacheDir keeps downloaded indexes with their ETag and Last-Modified,
	// revalidated on each fetch. Empty: no cache (and Offline fails).
	CacheDir string
	// Offline answers from CacheDir only, never touching the network.
	Offline bool
	S3      S3Getter
	// Retries is how many times a failed request (network error, 5xx,
	// 429) is retried; 0 means 3. RetryDelay is the first backoff delay
	// (0 means 500ms), doubled on each retry.
	Retries    int
	RetryDelay time.Duration
	// ShardJobs bounds parallel shard downloads; 0 means 16.
	ShardJobs int
}

// Index file names, in the order Repodata tries them. Shards are last: a
// channel that offers repodata.json as well is read whole, which costs one
// request instead of one per package name; only a shards-only channel is
// read through its shards (all of them).
var indexFiles = []string{"repodata.json.zst", "repodata.json", repodata.ShardIndexFile}

// Repodata fetches the index of one subdir of ch. Records get their URL
// (info.base_url of CEP 15 honoured) and Channel (ch.Name). A subdir the
// channel lacks is an error wrapping ErrNotFound that names the URL.
func (f *Fetcher) Repodata(ctx context.Context, ch Channel, subdir string) (*repodata.Repodata, error) {
	if !validSubdir(subdir) {
		return nil, fmt.Errorf("channel %s: %q is not a subdir name", ch.Name, subdir)
	}
	base := ch.SubdirURL(subdir)
	var missing []string
	for _, name := range indexFiles {
		u := base + name
		data, err := f.load(ctx, u)
		// Buckets served over https answer 403 for a missing key unless
		// listing is public: for the optional forms that means absent.
		if errors.Is(err, errAbsent) || name != "repodata.json" && errors.Is(err, errForbidden) {
			missing = append(missing, name)
			continue
		}
		if err != nil {
			return nil, err
		}
		var r *repodata.Repodata
		switch name {
		case "repodata.json.zst":
			r, err = repodata.ParseZst(data)
		case "repodata.json":
			r, err = repodata.Parse(data)
		default:
			r, err = f.shards(ctx, u, data)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", u, err)
		}
		if r.Info.Subdir == "" {
			r.Info.Subdir = subdir
		}
		if err := fill(r, ch, subdir, u); err != nil {
			return nil, err
		}
		return r, nil
	}
	// An absence seen online is remembered, so that offline an optional
	// subdir known to be missing is told from one never fetched.
	absent := base + "repodata.json"
	local := strings.HasPrefix(base, "file:")
	if f.Offline && !local {
		if m, _ := f.readCache(absent); m != nil && m.Absent {
			return nil, fmt.Errorf("channel %s has no %s index (as of the last online fetch): %s: %w",
				ch.Name, subdir, absent, ErrNotFound)
		}
		return nil, fmt.Errorf("channel %s: offline and no cached index of %s: %s: %w", ch.Name, subdir, absent, ErrNotCached)
	}
	if f.CacheDir != "" && !local {
		if err := f.writeCache(cacheMeta{URL: absent, Absent: true}, nil); err != nil {
			return nil, fmt.Errorf("cache %s: %w", absent, err)
		}
	}
	return nil, fmt.Errorf("channel %s has no %s index: %s: %w (tried %s)",
		ch.Name, subdir, absent, ErrNotFound, strings.Join(missing, ", "))
}

// validSubdir accepts names like linux-64, osx-arm64, noarch.
func validSubdir(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// RepodataOptional is Repodata for a subdir the channel may lack: a missing
// subdir gives (nil, nil).
func (f *Fetcher) RepodataOptional(ctx context.Context, ch Channel, subdir string) (*repodata.Repodata, error) {
	r, err := f.Repodata(ctx, ch, subdir)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return r, err
}

// fill sets each record's URL and Channel. Packages are beside the index
// unless info.base_url says otherwise; a relative base_url is resolved
// against the index's URL.
func fill(r *repodata.Repodata, ch Channel, subdir, indexURL string) error {
	pkgBase := ch.SubdirURL(subdir)
	if r.Info.BaseURL != "" {
		u, err := resolve(indexURL, r.Info.BaseURL)
		if err != nil {
			return fmt.Errorf("%s: info.base_url: %w", indexURL, err)
		}
		pkgBase = u
		if !strings.HasSuffix(pkgBase, "/") {
			pkgBase += "/"
		}
	}
	for _, m := range []map[string]repodata.Record{r.Packages, r.PackagesConda} {
		for k, rec := range m {
			rec.URL = pkgBase + k
			rec.Channel = ch.Name
			if rec.Subdir == "" {
				rec.Subdir = subdir
			}
			m[k] = rec
		}
	}
	return nil
}

func resolve(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", err
	}
	return b.ResolveReference(r).String(), nil
}

// shards loads every shard an index names, in parallel; shards are
// content-addressed, so a cached one is used without asking the server.
func (f *Fetcher) shards(ctx context.Context, indexURL string, data []byte) (*repodata.Repodata, error) {
	ix, err := repodata.ParseShardIndex(data)
	if err != nil {
		return nil, err
	}
	shardsBase := ix.Info.ShardsBaseURL
	if shardsBase == "" {
		shardsBase = "./shards/"
	}
	if !strings.HasSuffix(shardsBase, "/") {
		shardsBase += "/"
	}
	if shardsBase, err = resolve(indexURL, shardsBase); err != nil {
		return nil, fmt.Errorf("shards_base_url: %w", err)
	}
	if ix.Info.BaseURL != "" {
		// base_url of the index is relative to the index too; keep it
		// absolute so fill need not know where it came from
		if ix.Info.BaseURL, err = resolve(indexURL, ix.Info.BaseURL); err != nil {
			return nil, fmt.Errorf("base_url: %w", err)
		}
	}
	names := make([]string, 0, len(ix.Shards))
	for n := range ix.Shards {
		names = append(names, n)
	}
	out := make([]*repodata.Shard, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cmpOr(f.ShardJobs, 16))
	for i, name := range names {
		g.Go(func() error {
			sum := ix.Shards[name]
			u := shardsBase + repodata.ShardFileName(sum)
			b, err := f.loadShard(gctx, u, sum)
			if err != nil {
				return fmt.Errorf("shard %s: %w", name, err)
			}
			s, err := repodata.ParseShard(b)
			if err != nil {
				return fmt.Errorf("shard %s: %s: %w", name, u, err)
			}
			out[i] = s
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return repodata.FromShards(ix, out), nil
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func (f *Fetcher) loadShard(ctx context.Context, u string, sum [32]byte) ([]byte, error) {
	var cached string
	if f.CacheDir != "" && !strings.HasPrefix(u, "file:") {
		cached = filepath.Join(f.CacheDir, "shards", repodata.ShardFileName(sum))
		if b, err := os.ReadFile(cached); err == nil && sha256.Sum256(b) == sum {
			return b, nil
		}
	}
	if f.Offline && !strings.HasPrefix(u, "file:") {
		return nil, fmt.Errorf("offline and not cached: %s", u)
	}
	b, _, err := f.fetch(ctx, u, nil)
	if errors.Is(err, errAbsent) {
		return nil, fmt.Errorf("%s: %w", u, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	if got := sha256.Sum256(b); got != sum {
		return nil, fmt.Errorf("%s: sha256 %x, the index says %x", u, got, sum)
	}
	if cached != "" {
		if err := fsutil.WriteFile(cached, b, 0o644); err != nil {
			return nil, fmt.Errorf("cache shard: %w", err)
		}
	}
	return b, nil
}

// errAbsent marks a file the server does not have (or, offline, the cache).
var errAbsent = errors.New("absent")

// errForbidden marks a 403 answer.
var errForbidden = errors.New("forbidden")

// cacheMeta is the first line of a cache entry.
type cacheMeta struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// Absent records that the subdir had no index at all.
	Absent bool `json:"absent,omitempty"`
}

// cachePath is the entry of a URL: one file holding a line of metadata and
// then the body, so that one rename replaces both together.
func (f *Fetcher) cachePath(u string) string {
	sum := sha256.Sum256([]byte(u))
	return filepath.Join(f.CacheDir, "repodata", hex.EncodeToString(sum[:16])+".cache")
}

func (f *Fetcher) readCache(u string) (*cacheMeta, []byte) {
	if f.CacheDir == "" {
		return nil, nil
	}
	b, err := os.ReadFile(f.cachePath(u))
	if err != nil {
		return nil, nil
	}
	line, body, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		return nil, nil
	}
	var m cacheMeta
	if json.Unmarshal(line, &m) != nil || m.URL != u {
		return nil, nil
	}
	return &m, body
}

func (f *Fetcher) writeCache(m cacheMeta, body []byte) error {
	line, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return fsutil.WriteFileFrom(f.cachePath(m.URL), 0o644, func(w io.Writer) error {
		if _, err := w.Write(append(line, '\n')); err != nil {
			return err
		}
		_, err := w.Write(body)
		return err
	})
}

// load returns the bytes at u: file:// straight from disk, others through
// the cache, revalidated unless offline. errAbsent: no such file.
func (f *Fetcher) load(ctx context.Context, u string) ([]byte, error) {
	if strings.HasPrefix(u, "file:") {
		b, _, err := f.fetch(ctx, u, nil)
		return b, err
	}
	meta, body := f.readCache(u)
	if meta != nil && meta.Absent {
		meta, body = nil, nil
	}
	if f.Offline {
		if meta == nil {
			return nil, errAbsent
		}
		return body, nil
	}
	b, fresh, err := f.fetch(ctx, u, meta)
	if err != nil {
		return nil, err
	}
	if fresh == nil { // not modified
		return body, nil
	}
	if f.CacheDir != "" {
		if err := f.writeCache(*fresh, b); err != nil {
			return nil, fmt.Errorf("cache %s: %w", u, err)
		}
	}
	return b, nil
}

// fetch gets u. With cached metadata it asks conditionally; a nil returned
// meta means "not modified" (the caller keeps its cached body).
func (f *Fetcher) fetch(ctx context.Context, u string, cached *cacheMeta) ([]byte, *cacheMeta, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", u, err)
	}
	switch pu.Scheme {
	case "file":
		b, err := os.ReadFile(filepath.FromSlash(pu.Path))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, errAbsent
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", u, err)
		}
		return b, &cacheMeta{URL: u}, nil
	case "s3":
		return f.fetchS3(ctx, u, pu, cached)
	case "http", "https":
		return f.fetchHTTP(ctx, u, cached)
	}
	return nil, nil, fmt.Errorf("%s: unsupported scheme %q", u, pu.Scheme)
}

func (f *Fetcher) fetchS3(ctx context.Context, u string, pu *url.URL, cached *cacheMeta) ([]byte, *cacheMeta, error) {
	if f.S3 == nil {
		return nil, nil, fmt.Errorf("%s: no S3 client configured", u)
	}
	bucket, key := pu.Host, strings.TrimPrefix(pu.Path, "/")
	meta := &cacheMeta{URL: u}
	if h, ok := f.S3.(S3ETagger); ok {
		etag, err := h.HeadETag(ctx, bucket, key)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, errAbsent
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", u, err)
		}
		if cached != nil && etag != "" && cached.ETag == etag {
			return nil, nil, nil
		}
		meta.ETag = etag
	}
	rc, err := f.S3.GetObject(ctx, bucket, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, errAbsent
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", u, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", u, err)
	}
	return b, meta, nil
}

// retryable is a failure worth another attempt.
type retryable struct{ err error }

func (e retryable) Error() string { return e.err.Error() }
func (e retryable) Unwrap() error { return e.err }

func (f *Fetcher) fetchHTTP(ctx context.Context, u string, cached *cacheMeta) ([]byte, *cacheMeta, error) {
	retries := f.Retries
	if retries == 0 {
		retries = 3
	}
	delay := f.RetryDelay
	if delay == 0 {
		delay = 500 * time.Millisecond
	}
	for attempt := 0; ; attempt++ {
		b, meta, err := f.fetchHTTPOnce(ctx, u, cached)
		var r retryable
		if err == nil || !errors.As(err, &r) || attempt >= retries || ctx.Err() != nil {
			if r.err != nil {
				err = r.err
			}
			return b, meta, err
		}
		select {
		case <-ctx.Done():
			return nil, nil, context.Cause(ctx)
		case <-time.After(delay << attempt):
		}
	}
}

func (f *Fetcher) fetchHTTPOnce(ctx context.Context, u string, cached *cacheMeta) ([]byte, *cacheMeta, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", u, err)
	}
	if cached != nil {
		if cached.ETag != "" {
			req.Header.Set("If-None-Match", cached.ETag)
		}
		if cached.LastModified != "" {
			req.Header.Set("If-Modified-Since", cached.LastModified)
		}
	}
	client := f.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("%s: %w", u, err)
		}
		return nil, nil, retryable{fmt.Errorf("%s: %w", u, err)}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && cached != nil:
		return nil, nil, nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, nil, errAbsent
	case resp.StatusCode == http.StatusForbidden:
		return nil, nil, fmt.Errorf("%s: %s: %w", u, resp.Status, errForbidden)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return nil, nil, retryable{fmt.Errorf("%s: %s", u, resp.Status)}
	case resp.StatusCode != http.StatusOK:
		return nil, nil, fmt.Errorf("%s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, retryable{fmt.Errorf("%s: reading body: %w", u, err)}
	}
	if n := resp.ContentLength; n >= 0 && !resp.Uncompressed && int64(len(b)) != n {
		return nil, nil, retryable{fmt.Errorf("%s: got %d of %s bytes", u, len(b), strconv.FormatInt(n, 10))}
	}
	return b, &cacheMeta{URL: u, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}, nil
}
