package sparkemu

import (
	"archive/tar"
	"archive/zip"
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sparkenv/sparkenv/runtime/sparksubmit"
)

// sample writes a zip and a tar, each with an executable script, a plain
// file and a symbolic link.
func sample(t *testing.T, dir string) (zipPath, tarPath string) {
	zipPath = filepath.Join(dir, "env.ZIP")
	zf, _ := os.Create(zipPath)
	zw := zip.NewWriter(zf)
	add := func(name string, mode os.FileMode, data string) {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, data)
	}
	add("bin/run", 0o755, "#!/bin/sh\necho run\n")
	add("lib/data.txt", 0o644, "data\n")
	add("bin/link", os.ModeSymlink|0o777, "run")
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	zf.Close()

	tarPath = filepath.Join(dir, "env.tar")
	tf, _ := os.Create(tarPath)
	tw := tar.NewWriter(tf)
	tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	body := "#!/bin/sh\necho run\n"
	tw.WriteHeader(&tar.Header{Name: "bin/run", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(body))})
	io.WriteString(tw, body)
	tw.WriteHeader(&tar.Header{Name: "bin/link", Typeflag: tar.TypeSymlink, Linkname: "run", Mode: 0o777})
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	tf.Close()
	return zipPath, tarPath
}

func mode(t *testing.T, p string) os.FileMode {
	info, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode()
}

func TestUnpackLikeSpark(t *testing.T) {
	dir := t.TempDir()
	zp, tp := sample(t, dir)
	w := &sparksubmit.Wiring{Flags: []string{"--archives", zp + "," + tp + "#plain", "--files", filepath.Join(dir, "notes.txt")}}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("n"), 0o600)
	e, err := Start(context.Background(), filepath.Join(dir, "exec"), w, Options{Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"env.ZIP", "plain", "notes.txt"}; !reflect.DeepEqual(e.Unpacked, want) {
		t.Fatalf("unpacked %v, want %v (no alias: the file name)", e.Unpacked, want)
	}
	// zip (case-insensitive suffix): exec bits kept, the link became a
	// file holding its target.
	if m := mode(t, filepath.Join(e.Dir, "env.ZIP", "bin", "run")); m&0o111 == 0 {
		t.Errorf("zip lost exec bits: %v", m)
	}
	link := filepath.Join(e.Dir, "env.ZIP", "bin", "link")
	if m := mode(t, link); !m.IsRegular() {
		t.Errorf("zip link unpacked as %v", m)
	}
	if b, _ := os.ReadFile(link); string(b) != "run" {
		t.Errorf("zip link content %q", b)
	}
	// tar through Java: link kept, permissions dropped.
	if m := mode(t, filepath.Join(e.Dir, "plain", "bin", "run")); m&0o111 != 0 {
		t.Errorf(".tar kept exec bits: %v", m)
	}
	if m := mode(t, filepath.Join(e.Dir, "plain", "bin", "link")); m&os.ModeSymlink == 0 {
		t.Errorf(".tar link unpacked as %v", m)
	}
	// Fetched files are made executable.
	if m := mode(t, filepath.Join(e.Dir, "notes.txt")); m&0o111 == 0 {
		t.Errorf("fetched file not executable: %v", m)
	}
	if e.Python != "python3" {
		t.Errorf("default python %q", e.Python)
	}
	old, err := Start(context.Background(), filepath.Join(dir, "old"), &sparksubmit.Wiring{Flags: []string{"--archives", zp + "#e"}},
		Options{OldHadoopZip: true})
	if err != nil {
		t.Fatal(err)
	}
	if m := mode(t, filepath.Join(old.Dir, "e", "bin", "run")); m&0o111 != 0 {
		t.Errorf("old Hadoop zip kept exec bits: %v", m)
	}
}

func TestRefusesEscapes(t *testing.T) {
	dir := t.TempDir()
	zp := filepath.Join(dir, "bad.zip")
	f, _ := os.Create(zp)
	zw := zip.NewWriter(f)
	w, _ := zw.Create("../evil")
	io.WriteString(w, "x")
	zw.Close()
	f.Close()
	if err := Unpack(context.Background(), zp, "bad.zip", filepath.Join(dir, "out"), Options{}); err == nil || !strings.Contains(err.Error(), "leaves") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Start(context.Background(), filepath.Join(dir, "x"), &sparksubmit.Wiring{Flags: []string{"--archives", "s3a://b/k.tgz#e"}}, Options{}); err == nil {
		t.Fatal("s3a fetched")
	}
}

func TestDeps(t *testing.T) {
	w := &sparksubmit.Wiring{
		Flags: []string{"--archives", "a.tgz#x, b.zip", "--py-files", "p.zip"},
		Conf: map[string]string{"spark.yarn.dist.archives": "c.tar#y", "spark.pyspark.python": "./x/bin/python",
			"spark.executorEnv.PYSPARK_PYTHON": "./y/bin/python", "spark.executorEnv.FOO": "bar", "spark.files": "f.pex"},
	}
	d := Deps(w)
	if !reflect.DeepEqual(d.Archives, []string{"a.tgz#x", "b.zip", "c.tar#y"}) || !reflect.DeepEqual(d.Files, []string{"f.pex"}) ||
		!reflect.DeepEqual(d.PyFiles, []string{"p.zip"}) || d.Python != "./y/bin/python" || d.ExecutorEnv["FOO"] != "bar" {
		t.Fatalf("%+v", d)
	}
}

func FuzzSplitAlias(f *testing.F) {
	for _, s := range []string{"s3a://b/k.tar.gz#environment", "a#b#c", "", "#", "x.zip"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		uri, alias := SplitAlias(s)
		if strings.Contains(alias, "#") {
			t.Fatalf("alias %q holds #", alias)
		}
		if alias != "" || strings.Contains(s, "#") {
			if uri+"#"+alias != s {
				t.Fatalf("%q -> %q %q", s, uri, alias)
			}
		} else if uri != s {
			t.Fatalf("%q -> %q", s, uri)
		}
		for _, item := range SplitList(s) {
			if item == "" || strings.Contains(item, ",") {
				t.Fatalf("SplitList(%q) item %q", s, item)
			}
		}
	})
}
