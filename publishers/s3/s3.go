package s3

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/sync/errgroup"

	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/publishers"
)

// Kind and Version of this publisher. Bump Version when the same
// configuration starts to publish different keys or object contents.
const (
	Kind    = "s3"
	Version = "1"
)

// Publisher uploads artifacts to S3. The zero value is ready to use; the
// exported fields are options for the program that embeds it.
type Publisher struct {
	// Progress, when set, is told about every object: checked and skipped,
	// started, bytes done (after each part), finished or failed. Calls are
	// serialized, so the callback needs no lock of its own; it must return
	// quickly.
	Progress func(Event)
	// HTTPClient replaces the SDK's HTTP client (a proxy, say). The SDK
	// cannot add an AWS_CA_BUNDLE to a client it did not build: leave it
	// nil when that variable is set.
	HTTPClient aws.HTTPClient
	// Credentials replaces the standard AWS credential chain.
	Credentials aws.CredentialsProvider

	mu sync.Mutex // serializes Progress
	// apiOptions are added to every request's middleware stack; tests
	// record the requests with them.
	apiOptions []func(*middleware.Stack) error
}

var _ publishers.Publisher = (*Publisher)(nil)

// New returns a Publisher with no options set.
func New() *Publisher { return &Publisher{} }

// Kind implements publishers.Publisher.
func (*Publisher) Kind() string { return Kind }

// Version implements publishers.Publisher.
func (*Publisher) Version() string { return Version }

// NewConfig implements publishers.Publisher.
func (*Publisher) NewConfig() any { return &Config{} }

// EventKind says what happened to an object.
type EventKind string

// Event kinds, in the order one object sees them.
const (
	EventSkip     EventKind = "skip"     // present with the same sha256: nothing to do
	EventPlan     EventKind = "plan"     // dry run: would be uploaded
	EventStart    EventKind = "start"    // upload begins
	EventProgress EventKind = "progress" // Done grew (multipart: once per part)
	EventDone     EventKind = "done"     // the object is in place
	EventFail     EventKind = "fail"     // the upload failed; Err says why
)

// Event is one step of one object's publication.
type Event struct {
	Kind   EventKind
	Target string // artifact address, e.g. "target.conda_pack.env"
	Path   string // file path in the artifact; "latest.json" for a pointer
	Key    string // object key in the bucket
	Size   int64
	Done   int64 // bytes uploaded so far
	Err    error
}

// job is one object to put.
type job struct {
	target    string
	path      string
	key       string // full object key
	source    string // file to read, or "" when body holds the content
	body      []byte
	sha       string // hex sha256 of the content
	size      int64
	immutable bool
}

// Publish implements publishers.Publisher. Objects go up in three phases,
// each finished before the next starts: immutable files, then mutable
// files of tree layouts, then pointers. Any failure stops the publish
// before the next phase, so no index or pointer ever names a missing file.
// A dry run only asks (HEAD) and writes nothing; its Stats count what would
// be uploaded.
func (p *Publisher) Publish(ctx context.Context, req *publishers.Request) (*publishers.Receipt, error) {
	s, err := resolve(req.Config)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", req.Address, err)
	}
	client, region, err := p.client(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", req.Address, err)
	}
	loc := Location{Bucket: s.Bucket, Region: region, Endpoint: s.Endpoint, PathStyle: s.PathStyle, WebsiteEndpoint: s.WebsiteEndpoint}

	rec := &publishers.Receipt{Address: req.Address, Kind: Kind, Items: []publishers.ReceiptItem{}}
	var phases [3][]*job
	byKey := map[string]*job{}
	add := func(phase int, j *job) error {
		if prev, ok := byKey[j.key]; ok {
			if prev.sha != j.sha {
				return fmt.Errorf("%s: %s (%s) and %s (%s) both go to key %s with different content",
					req.Address, prev.path, prev.target, j.path, j.target, j.key)
			}
			return nil
		}
		byKey[j.key] = j
		phases[phase] = append(phases[phase], j)
		return nil
	}
	for _, a := range req.Artifacts {
		places, ptr := publishers.Layout(a)
		item := publishers.ReceiptItem{Target: a.Address, Files: []publishers.PublishedFile{}}
		for _, pl := range places {
			if !artifact.ValidPath(pl.File.Path) {
				return nil, fmt.Errorf("%s: artifact %s has an invalid file path %q", req.Address, a.Address, pl.File.Path)
			}
			j := &job{target: a.Address, path: pl.File.Path, key: s.key(pl.Key), source: pl.Source,
				sha: pl.File.SHA256, size: pl.File.Size, immutable: !pl.Last}
			phase := 0
			if pl.Last {
				phase = 1
			}
			if err := add(phase, j); err != nil {
				return nil, err
			}
			item.Files = append(item.Files, publishers.PublishedFile{Path: pl.File.Path, SHA256: pl.File.SHA256,
				Size: pl.File.Size, URLs: URLs(loc, j.key)})
		}
		sort.Slice(item.Files, func(i, k int) bool { return item.Files[i].Path < item.Files[k].Path })
		if ptr != nil {
			body, sum := encodePointer(ptr)
			j := &job{target: a.Address, path: path.Base(publishers.PointerKey(a)), key: s.key(publishers.PointerKey(a)),
				body: body, sha: sum, size: int64(len(body))}
			if err := add(2, j); err != nil {
				return nil, err
			}
			item.Pointer = &publishers.PublishedFile{Path: j.path, SHA256: sum, Size: j.size, URLs: URLs(loc, j.key)}
		}
		if a.Metadata[publishers.MetaLayout] == "tree" {
			item.Root = URLs(loc, s.key(a.Name))
		}
		rec.Items = append(rec.Items, item)
	}

	jobs := req.Jobs
	if jobs <= 0 {
		jobs = defaultJobs
	}
	logw := req.Log
	if logw == nil {
		logw = io.Discard
	}
	r := &run{p: p, s: s, c: client, dry: req.DryRun, log: logw}
	for _, ph := range phases {
		// Largest first, so one big file does not start last and run alone.
		sort.SliceStable(ph, func(i, k int) bool { return ph[i].size > ph[k].size })
		if err := r.phase(ctx, ph, jobs); err != nil {
			return nil, fmt.Errorf("%s: %w", req.Address, err)
		}
	}
	rec.Stats = publishers.PublishStats{Uploaded: int(r.uploaded.Load()), Skipped: int(r.skipped.Load()),
		UploadedBytes: r.bytes.Load()}
	return rec, nil
}

// encodePointer returns the canonical JSON of ptr and its hex sha256.
func encodePointer(ptr *publishers.Pointer) ([]byte, string) {
	b, err := json.MarshalIndent(ptr, "", "  ")
	if err != nil {
		panic(err) // a Pointer always encodes
	}
	b = append(b, '\n')
	return b, sha256Hex(b)
}

// client builds an S3 client from the standard AWS chain. Nothing here
// talks to the network: credentials are fetched on the first request.
func (p *Publisher) client(ctx context.Context, s *settings) (*s3api.Client, string, error) {
	opts := []func(*config.LoadOptions) error{
		// S3-compatible stores often return no checksum on reads, or
		// reject the streaming trailers the SDK sends by default; every
		// upload here carries its own precomputed sha256 instead.
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithRetryMaxAttempts(s.attempts),
	}
	if s.Region != "" {
		opts = append(opts, config.WithRegion(s.Region))
	}
	if s.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(s.Profile))
	}
	if p.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(p.Credentials))
	}
	if p.HTTPClient != nil {
		opts = append(opts, config.WithHTTPClient(p.HTTPClient))
	} else {
		opts = append(opts, config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			// Parallel files times parallel parts: keep their connections.
			t.MaxIdleConnsPerHost = 128
			// A server that accepted a request and then went silent must
			// not hang the publish; the clock starts once the body is sent.
			t.ResponseHeaderTimeout = 5 * time.Minute
		})))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("load AWS configuration (profile %q): %w", s.Profile, err)
	}
	if cfg.Region == "" {
		// S3-compatible stores take any region; AWS answers a wrong one
		// with a redirect that explain turns into a hint.
		cfg.Region = "us-east-1"
	}
	if !validRegion(cfg.Region) {
		return nil, "", fmt.Errorf("region %q from the AWS configuration is not a region name", cfg.Region)
	}
	c := s3api.NewFromConfig(cfg, func(o *s3api.Options) {
		o.UsePathStyle = s.PathStyle
		o.APIOptions = append(o.APIOptions, p.apiOptions...)
		if s.Endpoint != "" {
			o.BaseEndpoint = aws.String(s.Endpoint)
		}
	})
	return c, cfg.Region, nil
}

// run is the state of one Publish call.
type run struct {
	p   *Publisher
	s   *settings
	c   *s3api.Client
	dry bool

	logMu sync.Mutex
	log   io.Writer

	uploaded, skipped atomic.Int64
	bytes             atomic.Int64
	// unconditional is set once the store has answered NotImplemented to
	// an If-None-Match write; later writes rely on the HEAD check alone.
	unconditional atomic.Bool
}

func (r *run) logf(format string, args ...any) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	fmt.Fprintf(r.log, format+"\n", args...)
}

func (r *run) event(j *job, kind EventKind, done int64, err error) {
	if r.p.Progress == nil {
		return
	}
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	r.p.Progress(Event{Kind: kind, Target: j.target, Path: j.path, Key: j.key, Size: j.size, Done: done, Err: err})
}

// phase puts every job of one phase, up to jobs at a time, and returns the
// first failure after the others have stopped.
func (r *run) phase(ctx context.Context, js []*job, jobs int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, j := range js {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return r.one(gctx, j) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return context.Cause(ctx)
}

func (r *run) url(j *job) string { return "s3://" + r.s.Bucket + "/" + j.key }

// one puts one object unless it is there already.
func (r *run) one(ctx context.Context, j *job) error {
	st, why, err := r.head(ctx, j)
	if err != nil {
		err = fmt.Errorf("check %s (file %s of %s): %w", r.url(j), j.path, j.target, err)
		r.event(j, EventFail, 0, err)
		return err
	}
	switch st {
	case present:
		r.skipped.Add(1)
		r.event(j, EventSkip, j.size, nil)
		r.logf("skip %s (present, same sha256)", r.url(j))
		return nil
	case differs:
		if j.immutable {
			return conflict(r, j, why)
		}
	}
	if r.dry {
		r.uploaded.Add(1)
		r.bytes.Add(j.size)
		r.event(j, EventPlan, 0, nil)
		r.logf("would upload %s (%s)", r.url(j), humanSize(j.size))
		return nil
	}
	r.logf("upload %s (%s)", r.url(j), humanSize(j.size))
	r.event(j, EventStart, 0, nil)
	err = r.put(ctx, j)
	if err != nil && isPreconditionFailed(err) {
		// Someone else wrote the key between our HEAD and our PUT.
		st, why, herr := r.head(ctx, j)
		switch {
		case herr != nil:
			err = fmt.Errorf("%w (and checking it again failed: %v)", err, herr)
		case st == present:
			r.skipped.Add(1)
			r.event(j, EventSkip, j.size, nil)
			r.logf("skip %s (written meanwhile by another publisher, same sha256)", r.url(j))
			return nil
		default:
			return conflict(r, j, why)
		}
	}
	if err != nil {
		r.event(j, EventFail, 0, err)
		return fmt.Errorf("upload %s of %s (%s) to %s: %w", j.path, j.target, humanSize(j.size), r.url(j), explain(err, r.s))
	}
	r.uploaded.Add(1)
	r.bytes.Add(j.size)
	r.event(j, EventDone, j.size, nil)
	return nil
}

func conflict(r *run, j *job, why string) error {
	err := fmt.Errorf("%s (file %s of %s) already exists with different content (%s); "+
		"content-addressed objects are never overwritten: delete it if it is corrupt, or publish under another prefix",
		r.url(j), j.path, j.target, why)
	r.event(j, EventFail, 0, err)
	return err
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// contentType is chosen from a fixed table, not the host's mime database,
// so two machines publish identical objects.
func contentType(p string) string {
	base := strings.ToLower(path.Base(p))
	_, ext := publishers.SplitExt(base)
	switch ext {
	case ".json":
		return "application/json"
	case ".html", ".htm":
		return "text/html; charset=utf-8"
	case ".txt", ".md":
		return "text/plain; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".sh":
		return "text/x-shellscript; charset=utf-8"
	case ".py":
		return "text/x-python; charset=utf-8"
	case ".yaml", ".yml":
		return "application/yaml"
	case ".gz", ".tgz", ".tar.gz":
		return "application/gzip"
	case ".zst", ".tar.zst":
		return "application/zstd"
	case ".bz2", ".tar.bz2":
		return "application/x-bzip2"
	case ".xz", ".tar.xz":
		return "application/x-xz"
	case ".zip", ".whl", ".pex", ".conda", ".jar":
		return "application/zip"
	}
	return "application/octet-stream"
}

// cacheControl lets caches keep immutable objects forever and makes them
// revalidate mutable ones and pointers.
func cacheControl(j *job) string {
	if j.immutable {
		return "public, max-age=31536000, immutable"
	}
	return "no-cache"
}
