package condaindex

import (
	"context"
	"testing"
)

func BenchmarkIndexParts(b *testing.B) {
	dir, _, total := benchChannel(b, 300, 300<<10)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		o    Options
	}{{"plain", Options{NoCache: true}}, {"zst", Options{NoCache: true, Zst: true}}, {"shards", Options{NoCache: true, Shards: true}}, {"html-cd", Options{NoCache: true, HTML: true, Channeldata: true}}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(total)
			for b.Loop() {
				if _, err := Index(ctx, dir, c.o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
