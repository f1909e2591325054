package s3

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
)

func TestDecodeBlock(t *testing.T) {
	t.Parallel()
	src := `
bucket           = "ml-envs"
prefix           = "/repos/"
endpoint         = "https://storage.yandexcloud.net"
region           = "ru-central1"
path_style       = true
profile          = "yc"
website_endpoint = "https://repo.example.com"
part_size_mb     = 8
concurrency      = 2
`
	f, diags := hclparse.NewParser().ParseHCL([]byte(src), "env.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	p := New()
	cfg := p.NewConfig()
	if diags := gohcl.DecodeBody(f.Body, nil, cfg); diags.HasErrors() {
		t.Fatal(diags)
	}
	s, err := resolve(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.prefix != "repos" || s.partSize != 8*mib || s.threshold != 8*mib || s.conc != 2 || s.attempts != defaultAttempt ||
		!s.PathStyle || s.Profile != "yc" || s.key("a/b") != "repos/a/b" {
		t.Fatalf("resolved %+v", s)
	}
	if p.Kind() != "s3" || p.Version() != "1" {
		t.Fatal(p.Kind(), p.Version())
	}
}

func TestResolveErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "bucket is empty"},
		{Config{Bucket: "a/b"}, `contains '/'`},
		{Config{Bucket: "ok-bucket", Prefix: "a/../b"}, "not a clean relative path"},
		{Config{Bucket: "ok-bucket", Endpoint: "storage.yandexcloud.net"}, "is not an http(s) URL"},
		{Config{Bucket: "ok-bucket", Region: "eu central"}, "not a region name"},
		{Config{Bucket: "ok-bucket", PartSizeMB: 4}, "S3 parts are 5 to 5120 MiB"},
		{Config{Bucket: "ok-bucket", Concurrency: -1}, "concurrency"},
		{Config{Bucket: "ok-bucket", MultipartThresholdMB: 6000}, "multipart_threshold_mb"},
	} {
		_, err := resolve(&tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("resolve(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := resolve("nope"); err == nil {
		t.Error("a string was accepted as configuration")
	}
}

func TestPartPlan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n, part int64
		size    int64
		count   int
	}{
		{17 * mib, 16 * mib, 16 * mib, 2},
		{32 * mib, 16 * mib, 16 * mib, 2},
		{1, 16 * mib, 16 * mib, 1},
		// 200 GiB in 16 MiB parts would be 12800 parts: grow them.
		{200 << 30, 16 * mib, 21 * mib, 9753},
	} {
		size, count := partPlan(tc.n, tc.part)
		if size != tc.size || count != tc.count || count > maxParts || size < minPartSize {
			t.Errorf("partPlan(%d, %d) = %d, %d; want %d, %d", tc.n, tc.part, size, count, tc.size, tc.count)
		}
	}
}

func TestContentType(t *testing.T) {
	t.Parallel()
	for k, want := range map[string]string{
		"a/repodata.json":      "application/json",
		"a/env-0123.tar.gz":    "application/gzip",
		"a/index.html":         "text/html; charset=utf-8",
		"a/noarch/x-1-0.conda": "application/zip",
		"a/image-abc.sqfs":     "application/octet-stream",
		"a/repodata.json.zst":  "application/zstd",
		"a/deps-abcdef.zip":    "application/zip",
		"a/README":             "application/octet-stream",
	} {
		if got := contentType(k); got != want {
			t.Errorf("contentType(%q) = %q, want %q", k, got, want)
		}
	}
}
