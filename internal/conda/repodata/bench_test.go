package repodata

import "testing"

func BenchmarkParse(b *testing.B) {
	for _, file := range []string{"pytorch-linux-64.repodata.json", "r-linux-64.repodata.json"} {
		data := readData(b, file)
		b.Run(file, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Parse(data); err != nil {
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
