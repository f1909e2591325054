package fetch

import (
	"context"
	"encoding/hex"
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
	"sync"
	"time"

	"github.com/sparkenv/sparkenv/internal/fsutil"
)

// S3Getter reads objects for s3:// URLs. A missing object must be reported
// as an error wrapping fs.ErrNotExist.
type S3Getter interface {
	GetObject(ctx context.Context, bucket, key string) (io.ReadCloser, error)
}

// EventKind says what happened to an item.
type EventKind int

const (
	EventCached   EventKind = iota // already in the cache; nothing downloaded
	EventStart                     // download (attempt) starts; Bytes is the resume offset
	EventProgress                  // Bytes of Total received so far
	EventRetry                     // the attempt failed with Err; another follows
	EventDone                      // verified and in the cache
)

// Event reports progress. Progress may be called from several goroutines.
type Event struct {
	Kind    EventKind
	Item    Item
	Bytes   int64
	Total   int64 // -1 when unknown
	Attempt int
	Err     error
}

// Options tune Fetch.
type Options struct {
	Jobs    int  // parallel downloads; 0 means 8
	Offline bool // fail for anything not cached instead of downloading
	// Retries is how many times a download is retried after a network
	// error, a 5xx or 429 answer, or a cut connection; 0 means 4, negative
	// means none. RetryDelay is the first backoff (0 means 500ms), doubled
	// for each retry and capped at 30s.
	Retries    int
	RetryDelay time.Duration
	Client     *http.Client // nil: http.DefaultClient
	S3         S3Getter
	Progress   func(Event)
}

// Fetch makes every item present in the cache and returns the paths, in the
// order of items. Downloads run in parallel; the first failure cancels the
// rest, and the error names each failed package and its URL.
func (c *Cache) Fetch(ctx context.Context, items []Item, opts Options) ([]string, error) {
	if c.Dir == "" {
		return nil, errors.New("package cache: no directory")
	}
	keys := make([]key, len(items))
	for i, it := range items {
		k, err := itemKey(it)
		if err != nil {
			return nil, err
		}
		keys[i] = k
	}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = 8
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	paths := make([]string, len(items))
	errs := make([]error, len(items))
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	for i := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = context.Cause(ctx)
				return
			}
			defer func() { <-sem }()
			p, err := c.fetchOne(ctx, items[i], keys[i], &opts)
			if err != nil {
				errs[i] = err
				cancel(err)
				return
			}
			paths[i] = p
		}()
	}
	wg.Wait()
	// Report root causes only: items stopped because another failed add
	// nothing.
	cause := context.Cause(ctx)
	var out []error
	for _, err := range errs {
		if err != nil && (err == cause || !errors.Is(err, context.Canceled) && !errors.Is(err, cause)) {
			out = append(out, err)
		}
	}
	if len(out) == 0 && cause != nil && ctx.Err() != nil {
		for _, err := range errs {
			if err != nil {
				out = append(out, err)
				break
			}
		}
	}
	if err := errors.Join(out...); err != nil {
		return nil, err
	}
	return paths, nil
}

func (o *Options) emit(e Event) {
	if o.Progress != nil {
		o.Progress(e)
	}
}

func (c *Cache) fetchOne(ctx context.Context, it Item, k key, opts *Options) (string, error) {
	final := c.entry(k)
	if fi, err := os.Stat(final); err == nil && fi.Mode().IsRegular() {
		opts.emit(Event{Kind: EventCached, Item: it, Bytes: fi.Size(), Total: fi.Size()})
		return final, nil
	}
	if opts.Offline {
		return "", fmt.Errorf("package %s (%s): offline and not in the package cache", k.file, it.URL)
	}
	l, err := c.lock(ctx, k.id())
	if err != nil {
		return "", err
	}
	defer l.Unlock()
	// whoever held the lock may have finished the job
	if fi, err := os.Stat(final); err == nil && fi.Mode().IsRegular() {
		opts.emit(Event{Kind: EventCached, Item: it, Bytes: fi.Size(), Total: fi.Size()})
		return final, nil
	}
	part := filepath.Join(c.Dir, "partial", k.id()+"-"+k.file+".part")
	if err := os.MkdirAll(filepath.Dir(part), 0o755); err != nil {
		return "", fmt.Errorf("package cache: %w", err)
	}
	retries := opts.Retries
	switch {
	case retries == 0:
		retries = 4
	case retries < 0:
		retries = 0
	}
	delay := opts.RetryDelay
	if delay <= 0 {
		delay = 500 * time.Millisecond
	}
	for attempt := 0; ; attempt++ {
		wait, err := c.attempt(ctx, it, k, part, attempt, opts)
		if err == nil {
			break
		}
		var r retryable
		if !errors.As(err, &r) || attempt >= retries || ctx.Err() != nil {
			if errors.As(err, &r) {
				err = r.err
			}
			return "", fmt.Errorf("package %s (%s): %w", k.file, it.URL, err)
		}
		opts.emit(Event{Kind: EventRetry, Item: it, Attempt: attempt, Err: r.err})
		if wait <= 0 {
			wait = min(delay<<attempt, 30*time.Second)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("package %s (%s): %w", k.file, it.URL, context.Cause(ctx))
		case <-time.After(wait):
		}
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return "", fmt.Errorf("package cache: %w", err)
	}
	if err := os.Rename(part, final); err != nil {
		return "", fmt.Errorf("package cache: %w", err)
	}
	if err := fsutil.SyncDir(filepath.Dir(final)); err != nil {
		return "", fmt.Errorf("package cache: %w", err)
	}
	fi, _ := os.Stat(final)
	var size int64
	if fi != nil {
		size = fi.Size()
	}
	opts.emit(Event{Kind: EventDone, Item: it, Bytes: size, Total: size})
	return final, nil
}

// errBadRange marks a server refusing or garbling a resumed request.
var errBadRange = errors.New("cannot resume")

// retryable is a failure worth another attempt.
type retryable struct{ err error }

func (e retryable) Error() string { return e.err.Error() }
func (e retryable) Unwrap() error { return e.err }

// attempt downloads into part, resuming what is there when it can, and
// verifies the result; on success part holds exactly the item's bytes,
// synced. wait, when positive, is the delay the server asked for.
func (c *Cache) attempt(ctx context.Context, it Item, k key, part string, n int, opts *Options) (wait time.Duration, err error) {
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, fmt.Errorf("package cache: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	if it.Size > 0 && have > it.Size {
		have = 0
	}
	h := newHash(k)
	if have > 0 {
		// hash what an earlier attempt left, then continue after it
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, have)); err != nil {
			return 0, err
		}
	}
	if err := f.Truncate(have); err != nil {
		return 0, err
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return 0, err
	}
	resumed := have > 0
	if it.Size <= 0 || have < it.Size {
		body, start, total, wait, err := open(ctx, it, have, opts)
		if errors.Is(err, errBadRange) {
			// an earlier attempt may have got everything already; if not,
			// the partial file is no prefix of the file: start over
			if hex.EncodeToString(h.Sum(nil)) == k.hex {
				return 0, f.Sync()
			}
			if terr := f.Truncate(0); terr != nil {
				return 0, terr
			}
		}
		if err != nil {
			return wait, err
		}
		defer body.Close()
		if start != have {
			// the server sent the whole file: start over
			have, resumed = 0, false
			h.Reset()
			if err := f.Truncate(0); err != nil {
				return 0, err
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return 0, err
			}
		}
		opts.emit(Event{Kind: EventStart, Item: it, Bytes: have, Total: total, Attempt: n})
		limit := int64(-1)
		if it.Size > 0 {
			limit = it.Size - have + 1 // one byte more reveals a too-long file
		}
		w := &progressWriter{w: io.MultiWriter(f, h), opts: opts, ev: Event{Kind: EventProgress, Item: it, Bytes: have, Total: total, Attempt: n}}
		var src io.Reader = body
		if limit >= 0 {
			src = io.LimitReader(body, limit)
		}
		got, err := io.Copy(w, src)
		have += got
		if err != nil {
			if ctx.Err() != nil {
				return 0, context.Cause(ctx)
			}
			var we writeError
			if errors.As(err, &we) {
				return 0, fmt.Errorf("package cache: %w", we.err)
			}
			// a cut connection: what arrived stays in part for the next attempt
			return 0, retryable{fmt.Errorf("download interrupted after %d bytes: %w", have, err)}
		}
		if total >= 0 && have < total && (it.Size <= 0 || have < it.Size) {
			return 0, retryable{fmt.Errorf("download ended after %d of %d bytes", have, total)}
		}
	}
	bad := ""
	if it.Size > 0 && have != it.Size {
		bad = fmt.Sprintf("size %d, want %d", have, it.Size)
	} else if got := hex.EncodeToString(h.Sum(nil)); got != k.hex {
		bad = fmt.Sprintf("%s %s, want %s", k.algo, got, k.hex)
	}
	if bad != "" {
		// corrupt: never resume from it
		os.Remove(part)
		if resumed {
			// the old part may have been the bad bit: one fresh try
			return 0, retryable{fmt.Errorf("%w after resuming: %s", errMismatch, bad)}
		}
		return 0, fmt.Errorf("%w: %s", errMismatch, bad)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("package cache: %w", err)
	}
	return 0, nil
}

type writeError struct{ err error }

func (e writeError) Error() string { return e.err.Error() }

// progressWriter reports progress about every 256 KiB and tells write
// failures (the disk) from read failures (the network).
type progressWriter struct {
	w       io.Writer
	opts    *Options
	ev      Event
	pending int64
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.ev.Bytes += int64(n)
	p.pending += int64(n)
	if p.pending >= 256<<10 {
		p.pending = 0
		p.opts.emit(p.ev)
	}
	if err != nil {
		return n, writeError{err}
	}
	return n, nil
}

// open starts reading the item at offset from (http only; other sources
// start at 0). It returns where the body starts and the total size (-1 when
// unknown).
func open(ctx context.Context, it Item, from int64, opts *Options) (body io.ReadCloser, start, total int64, wait time.Duration, err error) {
	u, err := url.Parse(it.URL)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	switch u.Scheme {
	case "file":
		f, err := os.Open(filepath.FromSlash(u.Path))
		if err != nil {
			return nil, 0, 0, 0, err
		}
		total := int64(-1)
		if fi, err := f.Stat(); err == nil {
			total = fi.Size()
		}
		return f, 0, total, 0, nil
	case "s3":
		if opts.S3 == nil {
			return nil, 0, 0, 0, errors.New("no S3 client configured")
		}
		rc, err := opts.S3.GetObject(ctx, u.Host, strings.TrimPrefix(u.Path, "/"))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || ctx.Err() != nil {
				return nil, 0, 0, 0, err
			}
			return nil, 0, 0, 0, retryable{err}
		}
		return rc, 0, -1, 0, nil
	case "http", "https":
		return openHTTP(ctx, it, from, opts)
	}
	return nil, 0, 0, 0, fmt.Errorf("unsupported URL scheme %q", u.Scheme)
}

func openHTTP(ctx context.Context, it Item, from int64, opts *Options) (io.ReadCloser, int64, int64, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, it.URL, nil)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	// archives are compressed already; identity keeps byte offsets true
	// for Range
	req.Header.Set("Accept-Encoding", "identity")
	if from > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(from, 10)+"-")
	}
	client := opts.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, 0, 0, context.Cause(ctx)
		}
		return nil, 0, 0, 0, retryable{err}
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return resp.Body, 0, resp.ContentLength, 0, nil
	case resp.StatusCode == http.StatusPartialContent && from > 0:
		start, total, ok := contentRange(resp.Header.Get("Content-Range"))
		if !ok || start != from {
			resp.Body.Close()
			return nil, 0, 0, 0, retryable{fmt.Errorf("%w: Content-Range %q for a request from byte %d", errBadRange, resp.Header.Get("Content-Range"), from)}
		}
		return resp.Body, start, total, 0, nil
	}
	resp.Body.Close()
	status := fmt.Errorf("%s", resp.Status)
	switch {
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return nil, 0, 0, 0, retryable{fmt.Errorf("%w: %w (range from %d)", errBadRange, status, from)}
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return nil, 0, 0, retryAfter(resp.Header.Get("Retry-After")), retryable{status}
	}
	return nil, 0, 0, 0, status
}

// contentRange reads "bytes start-end/total"; total is -1 when "*".
func contentRange(v string) (start, total int64, ok bool) {
	v, ok = strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, false
	}
	rng, tot, ok := strings.Cut(v, "/")
	if !ok {
		return 0, 0, false
	}
	s, _, ok := strings.Cut(rng, "-")
	if !ok || !digits(s) || tot != "*" && !digits(tot) {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, total, true
}

// retryAfter reads a Retry-After in seconds, capped; dates are ignored.
func retryAfter(v string) time.Duration {
	s, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || s <= 0 {
		return 0
	}
	return min(time.Duration(s)*time.Second, time.Minute)
}

func digits(s string) bool {
	if s == "" || len(s) > 18 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
