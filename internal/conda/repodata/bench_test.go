package repodata

import (
	"testing"
)

// benchDocs are the real snapshots, plus conda-index4 wrapped as its
// linux-64 repodata.json.
func benchDocs(b *testing.B) []struct {
	name string
	data []byte
} {
	return []struct {
		name string
		data []byte
	}{
		{"pytorch-linux-64.repodata.json", readData(b, "pytorch-linux-64.repodata.json")},
		{"r-linux-64.repodata.json", readData(b, "r-linux-64.repodata.json")},
		{"conda-index4-linux-64", index4BySubdir(b)["linux-64"]},
	}
}

func BenchmarkParse(b *testing.B) {
	for _, doc := range benchDocs(b) {
		b.Run(doc.name, func(b *testing.B) {
			b.SetBytes(int64(len(doc.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(doc.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseSequential is Parse on one goroutine.
func BenchmarkParseSequential(b *testing.B) {
	for _, doc := range benchDocs(b) {
		b.Run(doc.name, func(b *testing.B) {
			b.SetBytes(int64(len(doc.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parse(doc.data, 1, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseReference is the encoding/json based reader Parse replaced,
// decoding records on as many goroutines as it did.
func BenchmarkParseReference(b *testing.B) {
	for _, doc := range benchDocs(b) {
		b.Run(doc.name, func(b *testing.B) {
			b.SetBytes(int64(len(doc.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := refParse(doc.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMarshal(b *testing.B) {
	r, err := Parse(readData(b, "r-linux-64.repodata.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Marshal(r); err != nil {
			b.Fatal(err)
		}
	}
}
