package s3

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/internal/testutil/s3server"
	"github.com/sparkenv/sparkenv/publishers"
)

// writeRandom writes n pseudo-random bytes (incompressible, reproducible
// from seed) to p.
func writeRandom(t testing.TB, p string, n int64, seed uint64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	var key [32]byte
	key[0] = byte(seed)
	key[1] = byte(seed >> 8)
	if _, err := io.CopyN(f, rand.NewChaCha8(key), n); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// scanned turns dir into an artifact of the given address.
func scanned(t testing.TB, dir, address string, meta map[string]string) publishers.Artifact {
	t.Helper()
	m, err := artifact.Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(address, ".")
	return publishers.Artifact{Address: address, Kind: parts[1], Name: parts[2], Dir: dir, Manifest: m, Metadata: meta}
}

// recorder logs the requests the SDK sends, with a sequence number taken
// when each goes out and when its response arrives. It sits at the end of
// the SDK's middleware stack, right before the HTTP client, because an
// HTTP client the SDK did not build cannot take AWS_CA_BUNDLE.
type recorder struct {
	seq  atomic.Int64
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, key, query string
	start, end         int64
	status             int
}

func (r *recorder) middleware(st *middleware.Stack) error {
	return st.Deserialize.Add(middleware.DeserializeMiddlewareFunc("recorder",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			req := in.Request.(*smithyhttp.Request)
			rec := recorded{method: req.Method, key: req.URL.Path, query: req.URL.RawQuery, start: r.seq.Add(1)}
			out, md, err := next.HandleDeserialize(ctx, in)
			rec.end = r.seq.Add(1)
			if resp, ok := out.RawResponse.(*smithyhttp.Response); ok {
				rec.status = resp.StatusCode
			}
			r.mu.Lock()
			r.reqs = append(r.reqs, rec)
			r.mu.Unlock()
			return out, md, err
		}), middleware.After)
}

// writes returns the requests that change the bucket (PUT and POST).
func (r *recorder) writes() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []recorded
	for _, q := range r.reqs {
		if q.method == http.MethodPut || q.method == http.MethodPost {
			out = append(out, q)
		}
	}
	return out
}

type fixture struct {
	srv *s3server.Server
	rec *recorder
	pub *Publisher
	cfg *Config
}

func newFixture(t *testing.T, srv *s3server.Server) *fixture {
	rec := &recorder{}
	p := New()
	p.apiOptions = append(p.apiOptions, rec.middleware)
	p.Credentials = credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, "")
	return &fixture{srv: srv, rec: rec, pub: p, cfg: &Config{
		Bucket: srv.Bucket, Prefix: "repos", Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true,
	}}
}

func (f *fixture) publish(t *testing.T, arts ...publishers.Artifact) (*publishers.Receipt, error) {
	t.Helper()
	f.rec.mu.Lock()
	f.rec.reqs = nil
	f.rec.mu.Unlock()
	var log strings.Builder
	rec, err := f.pub.Publish(context.Background(), &publishers.Request{
		Address: "publish.s3.repo", Name: "repo", Config: f.cfg, Artifacts: arts, Jobs: 3, Log: &log,
	})
	t.Logf("publish log:\n%s", log.String())
	return rec, err
}

// objectSHA reads an object's bytes straight from the server's directory.
func objectSHA(t *testing.T, srv *s3server.Server, key string) string {
	t.Helper()
	b, err := os.ReadFile(srv.ObjectPath(key))
	if err != nil {
		t.Fatalf("object %s: %v", key, err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func readPointer(t *testing.T, srv *s3server.Server, key string) publishers.Pointer {
	t.Helper()
	b, err := os.ReadFile(srv.ObjectPath(key))
	if err != nil {
		t.Fatalf("pointer %s: %v", key, err)
	}
	var p publishers.Pointer
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("pointer %s: %v", key, err)
	}
	return p
}

func TestPublishRepublishChange(t *testing.T) {
	t.Parallel()
	srv := s3server.Start(t)
	f := newFixture(t, srv)
	root := t.TempDir()

	// A files-layout artifact with a file above the multipart threshold...
	envDir := filepath.Join(root, "env")
	writeRandom(t, filepath.Join(envDir, "env.tar.gz"), 20*mib+12345, 1)
	writeFile(t, filepath.Join(envDir, "conf/spark.conf"), "spark.pyspark.python=./env/bin/python\n")
	env := scanned(t, envDir, "target.conda_pack.env", map[string]string{publishers.MetaMain: "env.tar.gz"})
	// ...and a tree-layout channel whose indexes are mutable.
	chDir := filepath.Join(root, "chan")
	writeRandom(t, filepath.Join(chDir, "noarch/pkg-1.0-0.conda"), 3000, 2)
	writeFile(t, filepath.Join(chDir, "noarch/repodata.json"), `{"packages.conda":{"pkg-1.0-0.conda":{}}}`)
	writeFile(t, filepath.Join(chDir, "linux-64/repodata.json"), `{}`)
	writeFile(t, filepath.Join(chDir, "index.html"), "<html></html>")
	ch := scanned(t, chDir, "target.conda_mirror.chan", map[string]string{
		publishers.MetaLayout: "tree", publishers.MetaMutable: "repodata.json,index.html"})

	var evMu sync.Mutex
	finalDone := map[string]int64{}
	var progressEvents int
	f.pub.Progress = func(e Event) {
		evMu.Lock()
		defer evMu.Unlock()
		switch e.Kind {
		case EventDone:
			finalDone[e.Key] = e.Done
		case EventProgress:
			progressEvents++
		}
	}

	rec, err := f.publish(t, ch, env)
	if err != nil {
		t.Fatal(err)
	}
	const objects = 2 + 1 + 4 // env files, env pointer, channel files
	if rec.Stats.Uploaded != objects || rec.Stats.Skipped != 0 || rec.Stats.UploadedBytes <= 20*mib {
		t.Fatalf("first publish stats %+v, want %d uploaded", rec.Stats, objects)
	}
	if len(finalDone) != objects || progressEvents < 2 {
		t.Errorf("progress: %d objects done, %d part events", len(finalDone), progressEvents)
	}

	// Every file is in place with its bytes, under the layout's keys.
	for _, a := range []publishers.Artifact{ch, env} {
		places, _ := publishers.Layout(a)
		for _, pl := range places {
			key := "repos/" + pl.Key
			if got := objectSHA(t, srv, key); got != pl.File.SHA256 {
				t.Errorf("%s: sha256 %s, want %s", key, got, pl.File.SHA256)
			}
			if finalDone[key] != pl.File.Size {
				t.Errorf("%s: progress says %d bytes done, size %d", key, finalDone[key], pl.File.Size)
			}
		}
	}
	// The big file went up in parts with checksums and carries its digest.
	head, err := srv.Client().HeadObject(context.Background(), &s3api.HeadObjectInput{
		Bucket: aws.String(srv.Bucket), Key: aws.String("repos/env/" + publishers.ContentName("env.tar.gz", env.Manifest.Files[1].SHA256))})
	if err != nil {
		t.Fatal(err)
	}
	if head.Metadata["sha256"] != env.Manifest.Files[1].SHA256 || !strings.HasSuffix(aws.ToString(head.ETag), `-2"`) {
		t.Errorf("big object: metadata %v, etag %s (want a 2-part upload)", head.Metadata, aws.ToString(head.ETag))
	}
	var parts int
	for _, w := range f.rec.writes() {
		if strings.Contains(w.query, "partNumber=") {
			parts++
		}
	}
	if parts != 2 {
		t.Errorf("%d UploadPart requests, want 2", parts)
	}

	// The pointer names the content-addressed keys.
	ptr := readPointer(t, srv, "repos/env/latest.json")
	if ptr.Digest != env.Manifest.Digest() || len(ptr.Files) != 2 {
		t.Fatalf("pointer %+v", ptr)
	}
	for _, e := range ptr.Files {
		if got := objectSHA(t, srv, "repos/"+e.Key); got != e.SHA256 {
			t.Errorf("pointer entry %s: object sha256 %s", e.Key, got)
		}
	}

	// Receipt: URLs for every file, the pointer, and the channel's root.
	if len(rec.Items) != 2 || rec.Items[0].Target != "target.conda_mirror.chan" {
		t.Fatalf("receipt items %+v", rec.Items)
	}
	chItem, envItem := rec.Items[0], rec.Items[1]
	if chItem.Root["s3a"] != "s3a://"+srv.Bucket+"/repos/chan" || chItem.Root["https"] != srv.Endpoint+"/"+srv.Bucket+"/repos/chan" {
		t.Errorf("channel root %v", chItem.Root)
	}
	if envItem.Pointer == nil || envItem.Pointer.URLs["s3"] != "s3://"+srv.Bucket+"/repos/env/latest.json" {
		t.Errorf("env pointer %+v", envItem.Pointer)
	}
	for _, pf := range envItem.Files {
		u := pf.URLs["https"]
		resp, err := http.Get(u) // anonymous: the bucket is private
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s = %d, want 403 from the real object URL", u, resp.StatusCode)
		}
		if !strings.HasPrefix(pf.URLs["s3a"], "s3a://"+srv.Bucket+"/repos/env/") {
			t.Errorf("s3a URL %s", pf.URLs["s3a"])
		}
	}

	// Order: every write of a mutable file starts after the last write of an
	// immutable one ended; pointers after both.
	checkOrder(t, f.rec.writes(), func(key string) int {
		switch {
		case strings.HasSuffix(key, "/latest.json"):
			return 2
		case strings.HasSuffix(key, "repodata.json"), strings.HasSuffix(key, "index.html"):
			return 1
		}
		return 0
	})

	// Republishing the same content uploads nothing.
	rec2, err := f.publish(t, ch, env)
	if err != nil {
		t.Fatal(err)
	}
	if rec2.Stats.Uploaded != 0 || rec2.Stats.Skipped != objects || len(f.rec.writes()) != 0 {
		t.Fatalf("republish stats %+v, %d writes", rec2.Stats, len(f.rec.writes()))
	}

	// A changed file gets a new key; the pointer moves; the old object stays.
	oldKey := "repos/" + ptr.Files[1].Key
	writeRandom(t, filepath.Join(envDir, "env.tar.gz"), 20*mib+12345, 3)
	env2 := scanned(t, envDir, "target.conda_pack.env", env.Metadata)

	// A dry run reports what would change and writes nothing.
	f.pub.Progress = nil
	f.cfg.Prefix = "repos"
	rec3, err := f.pub.Publish(context.Background(), &publishers.Request{Address: "publish.s3.repo", Config: f.cfg,
		Artifacts: []publishers.Artifact{ch, env2}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if rec3.Stats.Uploaded != 2 || rec3.Stats.Skipped != objects-2 || len(f.rec.writes()) != 0 {
		t.Fatalf("dry run stats %+v, %d writes", rec3.Stats, len(f.rec.writes()))
	}

	rec4, err := f.publish(t, ch, env2)
	if err != nil {
		t.Fatal(err)
	}
	if rec4.Stats.Uploaded != 2 || rec4.Stats.Skipped != objects-2 {
		t.Fatalf("changed publish stats %+v, want the new file and the pointer", rec4.Stats)
	}
	ptr2 := readPointer(t, srv, "repos/env/latest.json")
	newKey := "repos/" + ptr2.Files[1].Key
	if newKey == oldKey || ptr2.Digest != env2.Manifest.Digest() {
		t.Fatalf("pointer did not move: %s", newKey)
	}
	if objectSHA(t, srv, newKey) != env2.Manifest.Files[1].SHA256 || objectSHA(t, srv, oldKey) != ptr.Files[1].SHA256 {
		t.Fatal("objects under the old and new keys are not the old and new content")
	}
	checkOrder(t, f.rec.writes(), func(key string) int {
		if strings.HasSuffix(key, "/latest.json") {
			return 2
		}
		return 0
	})
}

// checkOrder fails unless every write of a phase starts after every write
// of earlier phases has ended.
func checkOrder(t *testing.T, writes []recorded, phase func(key string) int) {
	t.Helper()
	var lastEnd [3]int64
	for _, w := range writes {
		p := phase(w.key)
		lastEnd[p] = max(lastEnd[p], w.end)
	}
	n := 0
	for _, w := range writes {
		p := phase(w.key)
		for earlier := 0; earlier < p; earlier++ {
			if w.start < lastEnd[earlier] {
				t.Errorf("%s %s (phase %d) started at %d, before phase %d ended at %d", w.method, w.key, p, w.start, earlier, lastEnd[earlier])
			}
		}
		n++
	}
	if n == 0 {
		t.Error("no writes recorded")
	}
}

func TestImmutableConflict(t *testing.T) {
	t.Parallel()
	srv := s3server.Start(t)
	f := newFixture(t, srv)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "app.zip"), "the real content")
	a := scanned(t, dir, "target.pyfiles.app", nil)
	key := "repos/app/" + publishers.ContentName("app.zip", a.Manifest.Files[0].SHA256)
	// Something else already sits at the content-addressed key.
	if _, err := srv.Client().PutObject(context.Background(), &s3api.PutObjectInput{Bucket: aws.String(srv.Bucket),
		Key: aws.String(key), Body: strings.NewReader("other content!!!")}); err != nil {
		t.Fatal(err)
	}
	_, err := f.publish(t, a)
	if err == nil || !strings.Contains(err.Error(), "already exists with different content") || !strings.Contains(err.Error(), "app.zip") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(srv.ObjectPath(key)); string(b) != "other content!!!" {
		t.Fatalf("the object was overwritten: %q", b)
	}
	if _, err := os.Stat(srv.ObjectPath("repos/app/latest.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pointer written after a failure: %v", err)
	}
	if len(f.rec.writes()) != 0 {
		t.Fatalf("writes after a conflict: %+v", f.rec.writes())
	}
}

func TestKilledServerMidUpload(t *testing.T) {
	t.Parallel()
	srv := s3server.Start(t)
	f := newFixture(t, srv)
	f.cfg.PartSizeMB = 5
	f.cfg.Concurrency = 2
	f.cfg.MaxAttempts = 2
	dir := t.TempDir()

	// Version 1 is published and its pointer is in place.
	writeRandom(t, filepath.Join(dir, "image.sqfs"), 1000, 4)
	v1 := scanned(t, dir, "target.squashfs.image", nil)
	if _, err := f.publish(t, v1); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(srv.ObjectPath("repos/image/latest.json"))
	if err != nil {
		t.Fatal(err)
	}

	// Version 2 is big; the server dies after its first parts.
	writeRandom(t, filepath.Join(dir, "image.sqfs"), 60*mib, 5)
	v2 := scanned(t, dir, "target.squashfs.image", nil)
	var once sync.Once
	var killedAt atomic.Int64
	f.pub.Progress = func(e Event) {
		if e.Kind == EventProgress && e.Done >= 2*5*mib {
			once.Do(func() { killedAt.Store(e.Done); srv.Kill() })
		}
	}
	_, err = f.publish(t, v2)
	if err == nil {
		t.Fatal("publish succeeded against a killed server")
	}
	if killedAt.Load() == 0 || killedAt.Load() >= v2.Manifest.Files[0].Size {
		t.Fatalf("kill happened at %d bytes", killedAt.Load())
	}
	msg := err.Error()
	t.Logf("error: %s", msg)
	for _, want := range []string{"image.sqfs", "target.squashfs.image", "could not be reached"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q", want)
		}
	}

	srv.Restart()
	after, err := os.ReadFile(srv.ObjectPath("repos/image/latest.json"))
	if err != nil || string(after) != string(before) {
		t.Fatalf("pointer moved by a failed publish:\n%s\nwas\n%s", after, before)
	}
	f.pub.Progress = nil
	rec, err := f.publish(t, v2)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Stats.Uploaded != 2 {
		t.Errorf("rerun stats %+v, want the image and the pointer", rec.Stats)
	}
	ptr := readPointer(t, srv, "repos/image/latest.json")
	if ptr.Digest != v2.Manifest.Digest() || objectSHA(t, srv, "repos/"+ptr.Files[0].Key) != v2.Manifest.Files[0].SHA256 {
		t.Fatalf("after the rerun the pointer is %+v", ptr)
	}
}

// TestCredentialsChain runs the standard AWS chain (environment variables,
// then a named profile) against the server, and checks that a wrong secret
// fails with an explanation that does not contain it.
func TestCredentialsChain(t *testing.T) {
	srv := s3server.Start(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "deps.zip"), "zip bytes")
	a := scanned(t, dir, "target.pyfiles.deps", nil)
	credFile := filepath.Join(t.TempDir(), "credentials")
	writeFile(t, credFile, "[ci]\naws_access_key_id = "+srv.AccessKey+"\naws_secret_access_key = "+srv.SecretKey+"\n")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credFile)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "")

	var log strings.Builder
	var events []string
	publish := func(cfg *Config) (*publishers.Receipt, error) {
		p := New()
		p.Progress = func(e Event) { events = append(events, fmt.Sprintf("%+v", e)) }
		return p.Publish(context.Background(), &publishers.Request{Address: "publish.s3.repo",
			Config: cfg, Artifacts: []publishers.Artifact{a}, Log: &log})
	}
	base := Config{Bucket: srv.Bucket, Endpoint: srv.Endpoint, PathStyle: true, MaxAttempts: 1}

	t.Run("profile", func(t *testing.T) {
		cfg := base
		cfg.Profile = "ci"
		cfg.Prefix = "p"
		if rec, err := publish(&cfg); err != nil || rec.Stats.Uploaded != 2 {
			t.Fatalf("%v %+v", err, rec)
		}
	})
	t.Run("env", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
		cfg := base
		cfg.Prefix = "e"
		if rec, err := publish(&cfg); err != nil || rec.Stats.Uploaded != 2 {
			t.Fatalf("%v %+v", err, rec)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		const secret = "Wr0ngS3cretKeyValue/ABCDEFGHIJKLMNOPQRSTU"
		t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
		cfg := base
		cfg.Prefix = "w"
		_, err := publish(&cfg)
		if err == nil {
			t.Fatal("published with a wrong secret")
		}
		msg := err.Error()
		t.Logf("error: %s", msg)
		for what, text := range map[string]string{"error": msg, "log": log.String(), "events": strings.Join(events, "\n")} {
			if strings.Contains(text, secret) || strings.Contains(text, srv.SecretKey) {
				t.Fatalf("the %s text contains a secret key", what)
			}
		}
		if !strings.Contains(msg, "SignatureDoesNotMatch") || !strings.Contains(msg, "AWS_SECRET_ACCESS_KEY") || !strings.Contains(msg, "deps.zip") {
			t.Errorf("error does not explain the cause: %s", msg)
		}
	})
	t.Run("unknown access key", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIANOTAKEY")
		t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
		cfg := base
		cfg.Prefix = "u"
		_, err := publish(&cfg)
		if err == nil || strings.Contains(err.Error(), srv.SecretKey) || !strings.Contains(err.Error(), "access key ID is unknown") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unknown profile", func(t *testing.T) {
		cfg := base
		cfg.Profile = "nope"
		_, err := publish(&cfg)
		if err == nil || !strings.Contains(err.Error(), `profile "nope"`) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestDuplicateKeys(t *testing.T) {
	t.Parallel()
	d1, d2 := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(d1, "index.html"), "one")
	writeFile(t, filepath.Join(d2, "index.html"), "two")
	meta := map[string]string{publishers.MetaLayout: "tree"}
	a1 := scanned(t, d1, "target.site.www", meta)
	a2 := scanned(t, d2, "target.other.www", meta)
	p := New()
	p.Credentials = credentials.NewStaticCredentialsProvider("a", "b", "")
	_, err := p.Publish(context.Background(), &publishers.Request{Address: "publish.s3.x",
		Config: &Config{Bucket: "bucket", Endpoint: "http://127.0.0.1:1"}, Artifacts: []publishers.Artifact{a1, a2}})
	if err == nil || !strings.Contains(err.Error(), "both go to key www/index.html") {
		t.Fatalf("err = %v", err)
	}
}

// TestTLS publishes over HTTPS, where the SDK would switch to streaming
// trailer checksums and unsigned payloads if it computed them itself, and
// where AWS_CA_BUNDLE goes into the HTTP client this package builds.
func TestTLS(t *testing.T) {
	srv := s3server.StartTLS(t)
	t.Setenv("AWS_CA_BUNDLE", srv.CAFile)
	dir := t.TempDir()
	writeRandom(t, filepath.Join(dir, "env.tar.gz"), 12*mib, 8)
	writeFile(t, filepath.Join(dir, "small.txt"), "small")
	a := scanned(t, dir, "target.conda_pack.env", nil)
	p := New()
	p.Credentials = credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, "")
	cfg := &Config{Bucket: srv.Bucket, Endpoint: srv.Endpoint, PathStyle: true, PartSizeMB: 5, MultipartThresholdMB: 5}
	for run, want := range []int{3, 0} {
		rec, err := p.Publish(context.Background(), &publishers.Request{Address: "publish.s3.tls", Config: cfg,
			Artifacts: []publishers.Artifact{a}})
		if err != nil {
			t.Fatal(err)
		}
		if rec.Stats.Uploaded != want {
			t.Fatalf("run %d: stats %+v, want %d uploaded", run, rec.Stats, want)
		}
	}
	ptr := readPointer(t, srv, "env/latest.json")
	for _, e := range ptr.Files {
		if got := objectSHA(t, srv, e.Key); got != e.SHA256 {
			t.Errorf("%s: sha256 %s, want %s", e.Key, got, e.SHA256)
		}
	}
}

// An object put by another tool, without our sha256 metadata but with the
// right bytes, is read back once and not uploaded again.
func TestForeignObjectSameContent(t *testing.T) {
	t.Parallel()
	srv := s3server.Start(t)
	f := newFixture(t, srv)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "app.zip"), "the real content")
	a := scanned(t, dir, "target.pyfiles.app", nil)
	key := "repos/app/" + publishers.ContentName("app.zip", a.Manifest.Files[0].SHA256)
	if _, err := srv.Client().PutObject(context.Background(), &s3api.PutObjectInput{Bucket: aws.String(srv.Bucket),
		Key: aws.String(key), Body: strings.NewReader("the real content")}); err != nil {
		t.Fatal(err)
	}
	rec, err := f.publish(t, a)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Stats.Skipped != 1 || rec.Stats.Uploaded != 1 {
		t.Fatalf("stats %+v, want the file skipped and the pointer uploaded", rec.Stats)
	}
}

// TestRaceOnImmutableKey lets another writer put the object between the
// HEAD and the PUT: the conditional write must refuse to replace it, and
// the publisher must then skip it (same bytes) or report a conflict.
func TestRaceOnImmutableKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, other string
		wantErr     bool
	}{{"same content", "racing bytes", false}, {"other content", "RACING BYTES", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := s3server.Start(t)
			f := newFixture(t, srv)
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "lib.zip"), "racing bytes")
			a := scanned(t, dir, "target.pyfiles.lib", nil)
			var once sync.Once
			f.pub.apiOptions = append(f.pub.apiOptions, func(st *middleware.Stack) error {
				return st.Initialize.Add(middleware.InitializeMiddlewareFunc("race",
					func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
						if put, ok := in.Parameters.(*s3api.PutObjectInput); ok && strings.HasSuffix(*put.Key, ".zip") {
							once.Do(func() {
								sum := sha256.Sum256([]byte(tc.other))
								_, err := srv.Client().PutObject(ctx, &s3api.PutObjectInput{Bucket: put.Bucket, Key: put.Key,
									Body: strings.NewReader(tc.other), Metadata: map[string]string{"sha256": hex.EncodeToString(sum[:])}})
								if err != nil {
									t.Error(err)
								}
							})
						}
						return next.HandleInitialize(ctx, in)
					}), middleware.Before)
			})
			rec, err := f.publish(t, a)
			key := "repos/lib/" + publishers.ContentName("lib.zip", a.Manifest.Files[0].SHA256)
			if b, _ := os.ReadFile(srv.ObjectPath(key)); string(b) != tc.other {
				t.Fatalf("the other writer's object was replaced: %q", b)
			}
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "already exists with different content") {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rec.Stats.Skipped != 1 || rec.Stats.Uploaded != 1 {
				t.Fatalf("stats %+v, want the file skipped and the pointer uploaded", rec.Stats)
			}
		})
	}
}
