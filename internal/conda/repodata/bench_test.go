package repodata

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time the process has used, GC included: on a busy
// machine it says more about the cost of a parse than the wall clock.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchParse(b *testing.B, data []byte, parse func([]byte) (*Repodata, error)) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	start := cpuTime(b)
	for b.Loop() {
		if _, err := parse(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

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
		b.Run(doc.name, func(b *testing.B) { benchParse(b, doc.data, Parse) })
	}
}

// BenchmarkParseReference is the encoding/json based reader Parse replaced,
// decoding records on as many goroutines as it did.
func BenchmarkParseReference(b *testing.B) {
	for _, doc := range benchDocs(b) {
		b.Run(doc.name, func(b *testing.B) { benchParse(b, doc.data, refParse) })
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
