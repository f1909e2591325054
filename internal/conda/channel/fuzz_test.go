package channel

import (
	"strings"
	"testing"
)

// FuzzParseChannel checks that ParseChannel never panics and that what it
// returns is stable: parsing a channel's own BaseURL gives it back.
func FuzzParseChannel(f *testing.F) {
	for _, s := range []string{"conda-forge", "pytorch/label/nightly", "https://conda.anaconda.org/bioconda/",
		"file:///srv/ch", "/srv/ch", "s3://bucket/prefix", "http://[::1]:80/x", "./x", "a b", "https://h/%zz"} {
		f.Add(s, "")
	}
	f.Add("x", "https://mirror.example.org/")
	f.Fuzz(func(t *testing.T, s, alias string) {
		ch, err := ParseChannel(s, alias)
		if err != nil {
			return
		}
		if ch.BaseURL == "" || strings.HasSuffix(ch.BaseURL, "/") || ch.Name == "" {
			t.Fatalf("ParseChannel(%q, %q) = %+v", s, alias, ch)
		}
		again, err := ParseChannel(ch.BaseURL, alias)
		if err != nil {
			t.Fatalf("re-parsing %q: %v", ch.BaseURL, err)
		}
		if again.BaseURL != ch.BaseURL {
			t.Fatalf("re-parsing %q gave %q", ch.BaseURL, again.BaseURL)
		}
	})
}
