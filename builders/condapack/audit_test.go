package condapack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sparkenv/sparkenv/internal/archive"
)

func archiveLink(p, target string) archive.Entry {
	return archive.Entry{Path: p, Mode: os.ModeSymlink | 0o777, Linkname: target}
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// handMadeTree writes an environment as pip would leave it: one conda file
// overwritten, one deleted, and editable installs of three kinds.
func handMadeTree(t *testing.T) string {
	root := t.TempDir()
	sp := "lib/python3.11/site-packages/"
	write := func(p, s string) {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rec := map[string]any{"name": "six", "paths_data": map[string]any{"paths_version": 1, "paths": []map[string]any{
		{"_path": sp + "six.py", "path_type": "hardlink", "sha256": sum("conda six")},
		{"_path": sp + "six-1.0.dist-info/RECORD", "path_type": "hardlink", "sha256": sum("record")},
		{"_path": sp + "gone.py", "path_type": "hardlink", "sha256": sum("gone")},
		{"_path": "etc/six.conf", "path_type": "hardlink", "sha256": sum("placeholder"), "sha256_in_prefix": sum("patched"),
			"prefix_placeholder": "/opt/ph", "file_mode": "text"},
		{"_path": "bin/six-link", "path_type": "softlink"},
	}}}
	b, _ := json.Marshal(rec)
	write("conda-meta/six-1.0-0.json", string(b))
	write("conda-meta/history", "==> 2024-01-01 00:00:00 <==\n")
	write(sp+"six.py", "pip six")
	write(sp+"six-1.0.dist-info/RECORD", "record")
	write("etc/six.conf", "patched")
	write(sp+"mylib.egg-link", "/home/me/src/mylib\n.")
	write(sp+"__editable__.other-1.0.pth", "import __editable___other_finder")
	write(sp+"third-2.0.dist-info/direct_url.json", `{"url": "file:///home/me/third", "dir_info": {"editable": true}}`)
	write(sp+"wheel-1.0.dist-info/direct_url.json", `{"url": "file:///w.whl", "archive_info": {}}`)
	return root
}

func TestAuditHandMadeTree(t *testing.T) {
	root := handMadeTree(t)
	rep, err := Audit(context.Background(), root, 2)
	if err != nil {
		t.Fatal(err)
	}
	sp := "lib/python3.11/site-packages/"
	if want := []string{sp + "six.py"}; !reflect.DeepEqual(rep.Overwritten, want) {
		t.Errorf("overwritten %v, want %v", rep.Overwritten, want)
	}
	if want := []string{sp + "gone.py"}; !reflect.DeepEqual(rep.Missing, want) {
		t.Errorf("missing %v, want %v", rep.Missing, want)
	}
	want := []string{sp + "__editable__.other-1.0.pth", sp + "mylib.egg-link", sp + "third-2.0.dist-info/direct_url.json"}
	if !reflect.DeepEqual(rep.Editable, want) {
		t.Errorf("editable %v, want %v", rep.Editable, want)
	}
	err = rep.Err()
	if err == nil || !strings.Contains(err.Error(), "mylib.egg-link") || !strings.Contains(err.Error(), "editable") {
		t.Fatalf("Err() = %v", err)
	}
}

func TestAuditCleanTree(t *testing.T) {
	root := handMadeTree(t)
	sp := filepath.Join(root, "lib/python3.11/site-packages")
	for _, p := range []string{"mylib.egg-link", "__editable__.other-1.0.pth", "third-2.0.dist-info"} {
		os.RemoveAll(filepath.Join(sp, p))
	}
	os.WriteFile(filepath.Join(sp, "six.py"), []byte("conda six"), 0o644)
	os.WriteFile(filepath.Join(sp, "gone.py"), []byte("gone"), 0o644)
	rep, err := Audit(context.Background(), root, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Overwritten)+len(rep.Missing)+len(rep.Editable) != 0 || rep.Err() != nil {
		t.Fatalf("clean tree: %+v", rep)
	}
}

func TestAuditRefusesBadMeta(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "conda-meta"), 0o755)
	os.WriteFile(filepath.Join(root, "conda-meta", "x-1-0.json"), []byte(`{"paths_data":{"paths":[{"_path":"../etc/passwd"}]}}`), 0o644)
	if _, err := Audit(context.Background(), root, 1); err == nil || !strings.Contains(err.Error(), "x-1-0.json") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParseMeta(f *testing.F) {
	f.Add([]byte(`{"name":"a","paths_data":{"paths":[{"_path":"bin/a","path_type":"hardlink","file_mode":"binary"}]}}`))
	f.Add([]byte(`{"paths_data":{"paths":[{"_path":"a/../../b"}]}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseMeta(b)
		if err != nil {
			return
		}
		for _, p := range r.PathsData.Paths {
			if !cleanRel(p.Path) || strings.HasPrefix(p.Path, "/") {
				t.Fatalf("accepted %q", p.Path)
			}
		}
	})
}

func FuzzDirectURLEditable(f *testing.F) {
	f.Add([]byte(`{"dir_info": {"editable": true}}`))
	f.Add([]byte(`{"dir_info": null}`))
	f.Fuzz(func(t *testing.T, b []byte) { directURLEditable(b) })
}

func TestContainsAcrossBlocks(t *testing.T) {
	dir := t.TempDir()
	needle := []byte(PackPrefix)
	for _, c := range []struct {
		name      string
		data      []byte
		found, nu bool
	}{
		{"straddles", append(append(bytes.Repeat([]byte("x"), 1<<20+100), needle...), "tail"...), true, false},
		{"at the end", append(bytes.Repeat([]byte("y"), 3<<20), append(needle, 0)...), true, true},
		{"cut short", append(bytes.Repeat([]byte("z"), 1<<20), needle[:200]...), false, false},
		{"empty", nil, false, false},
		{"nul only", []byte{'a', 0}, false, true},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
		os.WriteFile(p, c.data, 0o644)
		found, nul, err := contains(p, needle)
		if err != nil || found != c.found || nul != c.nu {
			t.Errorf("%s: found %v nul %v err %v", c.name, found, nul, err)
		}
	}
}
