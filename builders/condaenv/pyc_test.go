package condaenv

import (
	"maps"
	"strings"
	"testing"
)

// TestPycManifest round-trips a manifest with awkward names and reasons,
// and checks that a manifest cut anywhere, or with its count changed, is
// refused (and so compiled again).
func TestPycManifest(t *testing.T) {
	m := &pycManifest{
		Compiled: map[string]string{
			"lib/python3.11/a.py":         "lib/python3.11/__pycache__/a.cpython-311.pyc",
			"lib/python3.11/tab\there.py": "lib/python3.11/__pycache__/tab\there.cpython-311.pyc",
			`lib/"quoted".py`:             `lib/__pycache__/"quoted".cpython-311.pyc`,
			"lib/back\\slash.py":          "lib/__pycache__/back\\slash.cpython-311.pyc",
		},
		Failed: map[string]string{
			"lib/bad\nline.py": "invalid syntax (line 1)\tend",
			"lib/x.py":         `"quoted" reason`,
		},
		Dirs: map[string]string{"lib/python3.11/__pycache__": "1763712000123456789", "lib/__pycache__": "1"},
	}
	enc := string(m.encode())
	got, err := decodePycManifest(enc)
	if err != nil {
		t.Fatalf("%v\n%s", err, enc)
	}
	if !maps.Equal(got.Compiled, m.Compiled) || !maps.Equal(got.Failed, m.Failed) || !maps.Equal(got.Dirs, m.Dirs) {
		t.Fatalf("round trip:\n%+v\nwant\n%+v", got, m)
	}
	for i := 0; i < len(enc); i++ {
		if _, err := decodePycManifest(enc[:i]); err == nil {
			t.Errorf("manifest cut at %d of %d bytes accepted", i, len(enc))
		}
	}
	if _, err := decodePycManifest(strings.Replace(enc, "end 8", "end 7", 1)); err == nil {
		t.Error("manifest with a wrong count accepted")
	}
	if _, err := decodePycManifest(enc + "c\ta\tb\n"); err == nil {
		t.Error("manifest with lines after its end accepted")
	}
}

func FuzzPycManifest(f *testing.F) {
	f.Add(string((&pycManifest{Compiled: map[string]string{"a.py": "__pycache__/a.pyc"}, Failed: map[string]string{"b\t.py": "x"}}).encode()))
	f.Add(pycManifestHeader + "\nend 0\n")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := decodePycManifest(s)
		if err != nil {
			return
		}
		again, err := decodePycManifest(string(m.encode()))
		if err != nil {
			t.Fatalf("re-encoded manifest refused: %v", err)
		}
		if !maps.Equal(again.Compiled, m.Compiled) || !maps.Equal(again.Failed, m.Failed) || !maps.Equal(again.Dirs, m.Dirs) {
			t.Fatalf("round trip changed %+v into %+v", m, again)
		}
	})
}
