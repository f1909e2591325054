package fetch

import (
	"fmt"
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
		if want := fmt.Sprintf("bytes %d-", start); len(s) < len(want) || s[:len(want)] != want {
			t.Fatalf("contentRange(%q) start %d", s, start)
		}
		_ = total
	})
}
