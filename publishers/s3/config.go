package s3

import (
	"fmt"
	"net/url"
	"path"
	"strings"
)

// Config is the body of a `publish "s3" "name"` block (less `targets`, which
// the core decodes). Fields tagged key:"-" change how the upload runs, not
// what ends up in the bucket, and stay out of the cache key.
type Config struct {
	Bucket string `hcl:"bucket"`
	// Prefix is prepended to every key: <prefix>/<target>/<file>.
	Prefix string `hcl:"prefix,optional"`
	// Endpoint is the base URL of an S3-compatible store; empty means AWS.
	Endpoint string `hcl:"endpoint,optional"`
	// Region defaults to the one of the shared config or AWS_REGION, then
	// us-east-1.
	Region string `hcl:"region,optional"`
	// PathStyle addresses the bucket as <endpoint>/<bucket>/<key> instead
	// of <bucket>.<host>; most S3-compatible stores need it.
	PathStyle bool `hcl:"path_style,optional"`
	// WebsiteEndpoint is the base URL of the bucket's static website when
	// it cannot be derived from the endpoint (a CDN, a custom domain).
	WebsiteEndpoint string `hcl:"website_endpoint,optional"`

	// Profile selects credentials from the shared config files.
	Profile string `hcl:"profile,optional" key:"-"`
	// PartSizeMB is the multipart part size (at least 5, S3's minimum).
	PartSizeMB int `hcl:"part_size_mb,optional" key:"-"`
	// MultipartThresholdMB: files larger than this go up in parts.
	MultipartThresholdMB int `hcl:"multipart_threshold_mb,optional" key:"-"`
	// Concurrency is the number of parts of one file in flight.
	Concurrency int `hcl:"concurrency,optional" key:"-"`
	// MaxAttempts bounds the SDK's retries of one request (with backoff).
	MaxAttempts int `hcl:"max_attempts,optional" key:"-"`
}

const (
	mib = 1 << 20
	// S3 refuses parts below 5 MiB (except the last) and more than 10000
	// parts, and single PUTs above 5 GiB.
	minPartSize    = 5 * mib
	maxParts       = 10000
	maxSinglePut   = 5 << 30
	defaultPartMB  = 16
	defaultConc    = 4
	defaultJobs    = 4
	defaultAttempt = 5
)

// settings is a validated Config with defaults applied.
type settings struct {
	Config
	prefix    string // cleaned, no leading or trailing slash
	partSize  int64
	threshold int64
	conc      int
	attempts  int
}

// Validate checks a decoded configuration without touching the network.
func (p *Publisher) Validate(cfg any) error {
	_, err := resolve(cfg)
	return err
}

func resolve(cfg any) (*settings, error) {
	var c Config
	switch v := cfg.(type) {
	case *Config:
		if v == nil {
			return nil, fmt.Errorf("no configuration")
		}
		c = *v
	case Config:
		c = v
	default:
		return nil, fmt.Errorf("configuration is a %T, want *s3.Config", cfg)
	}
	if err := checkBucket(c.Bucket); err != nil {
		return nil, err
	}
	s := &settings{Config: c}
	pre := strings.Trim(c.Prefix, "/")
	if pre != "" {
		if path.Clean(pre) != pre || pre == ".." || strings.HasPrefix(pre, "../") || strings.Contains(pre, "\\") {
			return nil, fmt.Errorf("prefix %q is not a clean relative path: write it like \"repos/prod\"", c.Prefix)
		}
	}
	s.prefix = pre
	if c.Region != "" && !validRegion(c.Region) {
		return nil, fmt.Errorf("region %q is not a region name such as \"eu-central-1\" or \"ru-central1\"", c.Region)
	}
	for _, e := range []struct{ name, v string }{{"endpoint", c.Endpoint}, {"website_endpoint", c.WebsiteEndpoint}} {
		if e.v == "" {
			continue
		}
		u, err := url.Parse(e.v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%s %q is not an http(s) URL such as \"https://storage.yandexcloud.net\"", e.name, e.v)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("%s %q must not carry a query or fragment", e.name, e.v)
		}
	}
	part := c.PartSizeMB
	if part == 0 {
		part = defaultPartMB
	}
	if part < 5 || part > 5*1024 {
		return nil, fmt.Errorf("part_size_mb = %d is out of range: S3 parts are 5 to 5120 MiB", c.PartSizeMB)
	}
	s.partSize = int64(part) * mib
	th := c.MultipartThresholdMB
	if th == 0 {
		th = part
	}
	if th < 5 || int64(th)*mib > maxSinglePut {
		return nil, fmt.Errorf("multipart_threshold_mb = %d is out of range: 5 to 5120 MiB", c.MultipartThresholdMB)
	}
	s.threshold = int64(th) * mib
	switch {
	case c.Concurrency < 0 || c.Concurrency > 64:
		return nil, fmt.Errorf("concurrency = %d is out of range: 1 to 64", c.Concurrency)
	case c.Concurrency == 0:
		s.conc = defaultConc
	default:
		s.conc = c.Concurrency
	}
	switch {
	case c.MaxAttempts < 0 || c.MaxAttempts > 20:
		return nil, fmt.Errorf("max_attempts = %d is out of range: 1 to 20", c.MaxAttempts)
	case c.MaxAttempts == 0:
		s.attempts = defaultAttempt
	default:
		s.attempts = c.MaxAttempts
	}
	return s, nil
}

// checkBucket applies the general S3 naming rules loosely: stores differ in
// details, but a slash, a space or an empty name is always a mistake.
func checkBucket(b string) error {
	if b == "" {
		return fmt.Errorf("bucket is empty")
	}
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket %q must be 3 to 63 characters long", b)
	}
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("bucket %q contains %q: use lowercase letters, digits, '-' and '.'", b, r)
		}
	}
	return nil
}

// validRegion accepts the shape of region names (they go into host names).
func validRegion(r string) bool {
	if r == "" || len(r) > 64 {
		return false
	}
	for _, c := range r {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// key returns the object key of a layout key.
func (s *settings) key(k string) string {
	if s.prefix == "" {
		return k
	}
	return s.prefix + "/" + k
}

// partPlan returns the part size for a file of size n: the configured one,
// grown when the file would need more than S3's 10000 parts.
func partPlan(n, partSize int64) (size int64, count int) {
	size = partSize
	if need := (n + maxParts - 1) / maxParts; need > size {
		size = (need + mib - 1) / mib * mib
	}
	count = int((n + size - 1) / size)
	if count == 0 {
		count = 1
	}
	return size, count
}
