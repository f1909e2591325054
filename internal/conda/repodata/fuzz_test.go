package repodata

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var fuzzSeeds = []string{
	`{}`,
	`{"info":{"subdir":"noarch"},"packages":{"a-1-0.tar.bz2":{"name":"a","version":"1","build":"0","depends":null,"timestamp":1600000000}}}`,
	`{"packages.conda":{"b-1-0.conda":{"name":"b","version":1.5,"build":"0","noarch":true,"track_features":["x"]}},"removed":["c-1-0.conda"],"repodata_version":2}`,
	`{"packages":{"x":{"version":{}}}}`,
	`{"info":null,"packages":null}`,
}

// FuzzParse checks that Parse never panics, and that whatever record it
// accepts and the strict writer also accepts survives a write and re-read.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			return
		}
		for _, rec := range r.Records() {
			sd := rec.Subdir
			if sd == "" {
				sd = "noarch"
			}
			rd, err := FromRecords(sd, []Record{rec})
			if err != nil {
				continue
			}
			out, err := Marshal(rd)
			if err != nil {
				continue
			}
			back, err := Parse(out)
			if err != nil {
				t.Fatalf("re-reading written record: %v\n%s", err, out)
			}
			want := rec
			want.Subdir = sd
			want.URL, want.Channel = "", ""
			want.Features, want.TrackFeatures = strings.TrimSpace(want.Features), strings.TrimSpace(want.TrackFeatures)
			want.MD5, want.SHA256 = strings.ToLower(want.MD5), strings.ToLower(want.SHA256)
			if want.Timestamp > 0 && want.Timestamp <= millisecondsAbove {
				// a tiny millisecond value reads back as seconds
				continue
			}
			if d := cmp.Diff([]Record{want}, back.Records()); d != "" {
				t.Fatalf("round trip (-want +got):\n%s", d)
			}
		}
	})
}

// shardSeeds are real shards and an index written by WriteShards.
func shardSeeds(f *testing.F) (index []byte, shards [][]byte) {
	dir := f.TempDir()
	recs := []Record{
		{Name: "a", Version: "1", Build: "0", FileName: "a-1-0.conda", Depends: []string{"b >=1"}, MD5: "5d438d0afe89cb57f3b650a2367495fb",
			SHA256: "7b7c28e141b8f2c9c840cc781a1dec0f1cb47967977a6269f50a2b4a44930283", Size: 10, Timestamp: 1600000000000},
		{Name: "b", Version: "2", Build: "1", FileName: "b-2-1.tar.bz2", TrackFeatures: "x", Noarch: "generic"},
	}
	if err := WriteShards(dir, "noarch", recs, WriteOptions{Removed: []string{"a-0-0.conda"}}); err != nil {
		f.Fatal(err)
	}
	index, err := os.ReadFile(filepath.Join(dir, "noarch", ShardIndexFile))
	if err != nil {
		f.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "noarch", ShardsDir, "*"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		shards = append(shards, b)
	}
	return index, shards
}

// FuzzParseShard feeds both the compressed reader and, with the zstd layer
// peeled off, the MessagePack reader itself.
func FuzzParseShard(f *testing.F) {
	_, shards := shardSeeds(f)
	for _, s := range shards {
		f.Add(s)
		plain, err := Decompress(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(plain)
	}
	f.Add([]byte{0x81, 0xa8, 'p', 'a', 'c', 'k', 'a', 'g', 'e', 's', 0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		if s, err := ParseShard(data); err == nil {
			_ = s.Records()
		}
		if s, err := parseShard(data); err == nil {
			for _, r := range s.Records() {
				if r.Depends == nil {
					t.Fatalf("%s: nil depends", r.FileName)
				}
			}
		}
	})
}

func FuzzParseShardIndex(f *testing.F) {
	index, _ := shardSeeds(f)
	f.Add(index)
	plain, err := Decompress(index)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(plain)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseShardIndex(data)
		if ix, err := parseShardIndex(data); err == nil && bytes.Equal(data, plain) && len(ix.Shards) != 2 {
			t.Fatalf("seed index has %d shards", len(ix.Shards))
		}
	})
}
