package pip

import (
	"net/url"
	"strings"
	"testing"
)

func FuzzParseProjectPage(f *testing.F) {
	f.Add([]byte(`<a href="../../packages/a-1.0-py3-none-any.whl#sha256=00" data-requires-python="&gt;=3.8">a-1.0-py3-none-any.whl</a>`))
	f.Add([]byte(`<A HREF='x/y%20z.whl'>y</A><a href="">e</a><a href="::">`))
	base, _ := url.Parse("http://h/simple/a/")
	f.Fuzz(func(t *testing.T, page []byte) {
		for _, l := range ParseProjectPage(base, page) {
			if l.Filename == "" || strings.Contains(l.Filename, "/") && !strings.Contains(l.URL, "%2F") {
				t.Fatalf("link %+v", l)
			}
		}
	})
}

func FuzzPlatformTags(f *testing.F) {
	f.Add("linux-64", "2.28", "")
	f.Add("osx-arm64", "", "14.1")
	f.Fuzz(func(t *testing.T, platform, glibc, macos string) {
		tags, err := Target{Platform: platform, Glibc: glibc, MacOS: macos}.PlatformTags()
		if err != nil {
			return
		}
		if len(tags) == 0 || tags[len(tags)-1] != "any" || len(tags) > 1100 {
			t.Fatalf("%s %s %s: %v", platform, glibc, macos, tags)
		}
	})
}
