package s3

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestURLs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		loc  Location
		key  string
		want map[string]string
	}{
		{
			name: "aws virtual host, dash website region",
			loc:  Location{Bucket: "envs", Region: "us-west-2"},
			key:  "repos/etl/env-0123456789ab.tar.gz",
			want: map[string]string{
				"s3":      "s3://envs/repos/etl/env-0123456789ab.tar.gz",
				"s3a":     "s3a://envs/repos/etl/env-0123456789ab.tar.gz",
				"https":   "https://envs.s3.us-west-2.amazonaws.com/repos/etl/env-0123456789ab.tar.gz",
				"website": "http://envs.s3-website-us-west-2.amazonaws.com/repos/etl/env-0123456789ab.tar.gz",
			},
		},
		{
			name: "aws dot website region",
			loc:  Location{Bucket: "envs", Region: "eu-central-1"},
			key:  "a.zip",
			want: map[string]string{
				"s3":      "s3://envs/a.zip",
				"s3a":     "s3a://envs/a.zip",
				"https":   "https://envs.s3.eu-central-1.amazonaws.com/a.zip",
				"website": "http://envs.s3-website.eu-central-1.amazonaws.com/a.zip",
			},
		},
		{
			name: "aws default region",
			loc:  Location{Bucket: "envs"},
			key:  "a.zip",
			want: map[string]string{
				"s3":      "s3://envs/a.zip",
				"s3a":     "s3a://envs/a.zip",
				"https":   "https://envs.s3.us-east-1.amazonaws.com/a.zip",
				"website": "http://envs.s3-website-us-east-1.amazonaws.com/a.zip",
			},
		},
		{
			name: "aws path style and china partition",
			loc:  Location{Bucket: "envs", Region: "cn-north-1", PathStyle: true},
			key:  "a.zip",
			want: map[string]string{
				"s3":      "s3://envs/a.zip",
				"s3a":     "s3a://envs/a.zip",
				"https":   "https://s3.cn-north-1.amazonaws.com.cn/envs/a.zip",
				"website": "http://envs.s3-website.cn-north-1.amazonaws.com.cn/a.zip",
			},
		},
		{
			name: "aws dotted bucket goes path style",
			loc:  Location{Bucket: "envs.example.com", Region: "us-east-2"},
			key:  "a.zip",
			want: map[string]string{
				"s3":      "s3://envs.example.com/a.zip",
				"s3a":     "s3a://envs.example.com/a.zip",
				"https":   "https://s3.us-east-2.amazonaws.com/envs.example.com/a.zip",
				"website": "http://envs.example.com.s3-website.us-east-2.amazonaws.com/a.zip",
			},
		},
		{
			name: "yandex",
			loc:  Location{Bucket: "ml", Region: "ru-central1", Endpoint: "https://storage.yandexcloud.net", PathStyle: true},
			key:  "repos/chan/noarch/repodata.json",
			want: map[string]string{
				"s3":      "s3://ml/repos/chan/noarch/repodata.json",
				"s3a":     "s3a://ml/repos/chan/noarch/repodata.json",
				"https":   "https://storage.yandexcloud.net/ml/repos/chan/noarch/repodata.json",
				"website": "https://ml.website.yandexcloud.net/repos/chan/noarch/repodata.json",
			},
		},
		{
			name: "custom endpoint with trailing slash, no website",
			loc:  Location{Bucket: "b1", Endpoint: "http://127.0.0.1:9000/"},
			key:  "x/y",
			want: map[string]string{
				"s3":    "s3://b1/x/y",
				"s3a":   "s3a://b1/x/y",
				"https": "http://127.0.0.1:9000/b1/x/y",
			},
		},
		{
			name: "website override and escaping",
			loc:  Location{Bucket: "b1", Endpoint: "https://minio.local", WebsiteEndpoint: "https://repo.example.com/"},
			key:  "chan/linux-64/numpy-1.26.4+mkl py_0.conda",
			want: map[string]string{
				"s3":      "s3://b1/chan/linux-64/numpy-1.26.4+mkl py_0.conda",
				"s3a":     "s3a://b1/chan/linux-64/numpy-1.26.4+mkl py_0.conda",
				"https":   "https://minio.local/b1/chan/linux-64/numpy-1.26.4%2Bmkl%20py_0.conda",
				"website": "https://repo.example.com/chan/linux-64/numpy-1.26.4%2Bmkl%20py_0.conda",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, URLs(tc.loc, tc.key)); d != "" {
				t.Errorf("URLs (-want +got):\n%s", d)
			}
		})
	}
}

// FuzzURLs checks that every HTTP form parses and names the key again.
func FuzzURLs(f *testing.F) {
	f.Add("envs", "us-east-1", "", false, "a/b.tar.gz")
	f.Add("ml", "ru-central1", "https://storage.yandexcloud.net", true, "x+y z/%41?#")
	f.Add("b.c", "cn-north-1", "", false, "ü/é")
	f.Fuzz(func(t *testing.T, bucket, region, endpoint string, pathStyle bool, key string) {
		if checkBucket(bucket) != nil || (region != "" && !validRegion(region)) {
			return
		}
		if endpoint != "" {
			u, err := url.Parse(endpoint)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.Path != "" {
				return
			}
		}
		urls := URLs(Location{Bucket: bucket, Region: region, Endpoint: endpoint, PathStyle: pathStyle}, key)
		if urls["s3"] != "s3://"+bucket+"/"+key {
			t.Fatalf("s3 URL %q", urls["s3"])
		}
		for _, scheme := range []string{"https", "website"} {
			raw, ok := urls[scheme]
			if !ok {
				continue
			}
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatalf("%s URL %q does not parse: %v", scheme, raw, err)
			}
			if !strings.HasSuffix(u.Path, "/"+key) {
				t.Fatalf("%s URL %q has path %q, want it to end in /%s", scheme, raw, u.Path, key)
			}
		}
	})
}
