package fetch

import (
	"strings"
	"testing"
)

func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-9/10", "bytes 5-9/*", "bytes */10", "bytes -1-2/3", "items 0-1/2", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, total, ok := contentRange(s)
		if !ok {
			return
		}
		if start < 0 || total < -1 || !strings.HasPrefix(s, "bytes ") {
			t.Fatalf("contentRange(%q) = %d, %d", s, start, total)
		}
	})
}
