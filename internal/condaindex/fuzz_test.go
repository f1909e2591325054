package condaindex

import "testing"

// FuzzParseCache: a cache file is read back from disk, where anything may
// have happened to it; whatever parses must survive a write and re-read.
func FuzzParseCache(f *testing.F) {
	f.Add([]byte(`{"version":"sparkenv.index.v1","files":{"noarch/a-1-0.conda":{"size":3,"mtime_ns":5,"inode":7,"record":{"name":"a","version":"1","build":"0","build_number":0,"depends":[],"fn":"a-1-0.conda","subdir":"noarch"},"meta":{"run_exports":{"weak":["a"]},"source_url":["x","y"]}}}}`))
	f.Add([]byte(`{"version":"sparkenv.index.v1","files":{"x":null}}`))
	f.Add([]byte(`{"version":"old"}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries := parseCache(data)
		b, err := marshalCache(entries)
		if err != nil {
			t.Fatalf("a parsed cache does not encode: %v", err)
		}
		if again := parseCache(b); len(again) != len(entries) {
			t.Fatalf("%d entries, %d after a round trip", len(entries), len(again))
		}
	})
}
