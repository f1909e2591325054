package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/publishers"
)

// makeArtifact writes files into a fresh directory and returns the
// artifact a build would have produced.
func makeArtifact(t *testing.T, kind, name string, files map[string]string, meta map[string]string) publishers.Artifact {
	t.Helper()
	dir := t.TempDir()
	for p, data := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := artifact.Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	return publishers.Artifact{
		Address: "target." + kind + "." + name, Kind: kind, Name: name,
		Dir: dir, Manifest: m, Metadata: meta,
	}
}

func publish(t *testing.T, p *Publisher, dest string, dry bool, as ...publishers.Artifact) (*publishers.Receipt, error) {
	t.Helper()
	return p.Publish(context.Background(), &publishers.Request{
		Address: "publish.local.share", Name: "share",
		Config:  &Config{Dir: "out", Prefix: "prod"},
		BaseDir: dest, Artifacts: as, DryRun: dry,
	})
}

func readPointer(t *testing.T, root string, name string) (publishers.Pointer, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ptr publishers.Pointer
	if err := json.Unmarshal(b, &ptr); err != nil {
		t.Fatal(err)
	}
	return ptr, b
}

var appFiles = map[string]string{"app.zip": "zip bytes v1", "docs/readme.txt": "read me\n"}

func TestPublishAndRepublish(t *testing.T) {
	t.Parallel()
	dest := t.TempDir()
	root := filepath.Join(dest, "out", "prod")
	a := makeArtifact(t, "pyfiles", "app", appFiles, map[string]string{"main": "app.zip"})
	rc, err := publish(t, New(), dest, false, a)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Stats.Uploaded != 3 || rc.Stats.Skipped != 0 {
		t.Errorf("first publish stats %+v, want 3 uploaded", rc.Stats)
	}
	zipFile, _ := a.Manifest.Lookup("app.zip")
	key := "app/app-" + zipFile.SHA256[:12] + ".zip"
	if b, err := os.ReadFile(filepath.Join(root, key)); err != nil || string(b) != "zip bytes v1" {
		t.Fatalf("%s: %q, %v", key, b, err)
	}
	ptr, raw := readPointer(t, root, "app")
	if ptr.Target != a.Address || ptr.Digest != a.Manifest.Digest() || len(ptr.Files) != 2 {
		t.Errorf("pointer %+v", ptr)
	}
	for _, e := range ptr.Files {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(e.Key)))
		if err != nil || string(b) != appFiles[e.Path] {
			t.Errorf("pointer entry %s -> %s: %q, %v", e.Path, e.Key, b, err)
		}
	}
	// Canonical JSON: keys sorted at every level.
	order := []string{`"digest"`, `"files"`, `"key"`, `"path"`, `"sha256"`, `"size"`, `"target"`}
	last := -1
	for _, k := range order {
		i := bytes.Index(raw, []byte(k))
		if i < last {
			t.Errorf("pointer keys not sorted:\n%s", raw)
			break
		}
		last = i
	}

	// Receipt: every file with its file:// URL, the pointer too.
	if len(rc.Items) != 1 || len(rc.Items[0].Files) != 2 || rc.Items[0].Pointer == nil {
		t.Fatalf("receipt %+v", rc)
	}
	for _, f := range rc.Items[0].Files {
		u := f.URLs["file"]
		if !strings.HasPrefix(u, "file:///") {
			t.Errorf("%s: url %q", f.Path, u)
		}
		b, err := os.ReadFile(strings.TrimPrefix(u, "file://"))
		if err != nil || string(b) != appFiles[f.Path] {
			t.Errorf("%s: %s holds %q (%v)", f.Path, u, b, err)
		}
	}
	if got, want := rc.Items[0].Pointer.URLs["file"], "file://"+filepath.Join(root, "app", "latest.json"); got != want {
		t.Errorf("pointer url %s, want %s", got, want)
	}

	// Republish: nothing copied, nothing touched.
	past := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	var published []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			published = append(published, p)
			os.Chtimes(p, past, past)
		}
		return nil
	})
	rc, err = publish(t, New(), dest, false, a)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Stats.Uploaded != 0 || rc.Stats.Skipped != 3 || rc.Stats.UploadedBytes != 0 {
		t.Errorf("republish stats %+v, want nothing uploaded", rc.Stats)
	}
	for _, p := range published {
		info, err := os.Stat(p)
		if err != nil || !info.ModTime().Equal(past) {
			t.Errorf("%s was rewritten on republish", p)
		}
	}
}

func TestChangedArtifactMovesPointer(t *testing.T) {
	t.Parallel()
	dest := t.TempDir()
	root := filepath.Join(dest, "out", "prod")
	v1 := makeArtifact(t, "pyfiles", "app", appFiles, nil)
	if _, err := publish(t, New(), dest, false, v1); err != nil {
		t.Fatal(err)
	}
	old, _ := readPointer(t, root, "app")
	v2 := makeArtifact(t, "pyfiles", "app", map[string]string{"app.zip": "zip bytes v2", "docs/readme.txt": "read me\n"}, nil)
	rc, err := publish(t, New(), dest, false, v2)
	if err != nil {
		t.Fatal(err)
	}
	// The new zip and the pointer; the readme is the same bytes.
	if rc.Stats.Uploaded != 2 || rc.Stats.Skipped != 1 {
		t.Errorf("stats %+v", rc.Stats)
	}
	cur, _ := readPointer(t, root, "app")
	key := func(p publishers.Pointer, path string) string {
		for _, e := range p.Files {
			if e.Path == path {
				return e.Key
			}
		}
		return ""
	}
	if key(old, "app.zip") == key(cur, "app.zip") {
		t.Fatalf("changed zip kept its name %s", key(cur, "app.zip"))
	}
	if key(old, "docs/readme.txt") != key(cur, "docs/readme.txt") {
		t.Error("unchanged file got a new name")
	}
	if cur.Digest != v2.Manifest.Digest() {
		t.Error("pointer does not name the new manifest")
	}
	// The old version stays for readers that still hold the old pointer.
	if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(key(old, "app.zip")))); err != nil {
		t.Errorf("old file removed: %v", err)
	}
}

func TestCrashKeepsOldPointer(t *testing.T) {
	t.Parallel()
	dest := t.TempDir()
	root := filepath.Join(dest, "out", "prod")
	v1 := makeArtifact(t, "pyfiles", "app", appFiles, nil)
	if _, err := publish(t, New(), dest, false, v1); err != nil {
		t.Fatal(err)
	}
	_, before := readPointer(t, root, "app")

	v2 := makeArtifact(t, "pyfiles", "app", map[string]string{"app.zip": "v2", "docs/readme.txt": "v2 docs"}, nil)
	crash := errors.New("power cut")
	writes := 0
	p := &Publisher{beforeWrite: func(key string) error {
		writes++
		if writes == 2 { // after the first new file, before the second
			return crash
		}
		return nil
	}}
	if _, err := publish(t, p, dest, false, v2); !errors.Is(err, crash) {
		t.Fatalf("err = %v, want the injected crash", err)
	}
	if _, after := readPointer(t, root, "app"); !bytes.Equal(before, after) {
		t.Error("pointer changed by a publish that did not finish")
	}

	// A store file that no longer matches its manifest is never published
	// (the copy is verified before it is renamed into place).
	v3 := makeArtifact(t, "pyfiles", "app", map[string]string{"app.zip": "v3", "docs/readme.txt": "v3 docs"}, nil)
	if err := os.WriteFile(filepath.Join(v3.Dir, "app.zip"), []byte("v3 tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := publish(t, New(), dest, false, v3)
	if err == nil || !strings.Contains(err.Error(), "manifest says") {
		t.Fatalf("tampered source: err = %v", err)
	}
	f, _ := v3.Manifest.Lookup("app.zip")
	if _, err := os.Stat(filepath.Join(root, "app", "app-"+f.SHA256[:12]+".zip")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unverified file published: %v", err)
	}
	if _, after := readPointer(t, root, "app"); !bytes.Equal(before, after) {
		t.Error("pointer changed by a failed publish")
	}
	entries, _ := os.ReadDir(filepath.Join(root, "app"))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestCorruptionIsAnError(t *testing.T) {
	t.Parallel()
	dest := t.TempDir()
	root := filepath.Join(dest, "out", "prod")
	a := makeArtifact(t, "pyfiles", "app", appFiles, nil)
	if _, err := publish(t, New(), dest, false, a); err != nil {
		t.Fatal(err)
	}
	f, _ := a.Manifest.Lookup("app.zip")
	bad := filepath.Join(root, "app", "app-"+f.SHA256[:12]+".zip")
	// Same size, different bytes: only the digest tells.
	if err := os.WriteFile(bad, []byte("zip bytes XX"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{true, false} {
		_, err := publish(t, New(), dest, dry, a)
		if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("dry=%v: err = %v", dry, err)
		}
	}
	if b, _ := os.ReadFile(bad); string(b) != "zip bytes XX" {
		t.Error("corrupt file was overwritten")
	}
}

func TestTreeLayoutWritesMutableLast(t *testing.T) {
	t.Parallel()
	dest := t.TempDir()
	root := filepath.Join(dest, "out", "prod")
	files := map[string]string{
		"index.html":                  "<html>",
		"linux-64/a-1.0-0.conda":      "a",
		"linux-64/repodata.json":      `{"packages":{}}`,
		"noarch/b-2.0-0.conda":        "b",
		"noarch/repodata.json":        `{}`,
		"noarch/repodata.json.zst":    "zst",
		"noarch/z-last-alpha.tar.bz2": "z",
	}
	a := makeArtifact(t, "channel", "ch", files, map[string]string{
		publishers.MetaLayout:  "tree",
		publishers.MetaMutable: "repodata.json, repodata.json.zst ,index.html",
	})
	var order []string
	p := &Publisher{beforeWrite: func(key string) error { order = append(order, key); return nil }}
	rc, err := publish(t, p, dest, false, a)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ch/linux-64/a-1.0-0.conda", "ch/noarch/b-2.0-0.conda", "ch/noarch/z-last-alpha.tar.bz2",
		"ch/index.html", "ch/linux-64/repodata.json", "ch/noarch/repodata.json", "ch/noarch/repodata.json.zst",
	}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("write order:\n got %q\nwant %q", order, want)
	}
	it := rc.Items[0]
	if it.Pointer != nil {
		t.Error("tree layout got a pointer")
	}
	if got, want := it.Root["file"], "file://"+filepath.Join(root, "ch")+"/"; got != want {
		t.Errorf("root %q, want %q", got, want)
	}
	for p, data := range files {
		if b, _ := os.ReadFile(filepath.Join(root, "ch", filepath.FromSlash(p))); string(b) != data {
			t.Errorf("%s holds %q", p, b)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "ch", "latest.json")); err == nil {
		t.Error("tree layout wrote a pointer")
	}

	// A new index replaces the old one in place; unchanged files stay.
	files["noarch/repodata.json"] = `{"packages":{"b":1}}`
	a2 := makeArtifact(t, "channel", "ch", files, a.Metadata)
	order = nil
	rc, err = publish(t, p, dest, false, a2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(order, []string{"ch/noarch/repodata.json"}) || rc.Stats.Skipped != 6 {
		t.Errorf("second publish wrote %q, stats %+v", order, rc.Stats)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	dest := t.TempDir()
	a := makeArtifact(t, "pyfiles", "app", appFiles, nil)
	rc, err := publish(t, New(), dest, true, a)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Stats.Uploaded != 3 || rc.Stats.UploadedBytes == 0 {
		t.Errorf("dry run stats %+v", rc.Stats)
	}
	if entries, _ := os.ReadDir(dest); len(entries) != 0 {
		t.Errorf("dry run wrote %v", entries)
	}
	if rc.Items[0].Pointer == nil || len(rc.Items[0].Files) != 2 {
		t.Errorf("dry run receipt %+v", rc.Items[0])
	}
}

func TestSharedKeysAcrossTargets(t *testing.T) {
	t.Parallel()
	dest := t.TempDir()
	a := makeArtifact(t, "pyfiles", "app", appFiles, nil)
	b := makeArtifact(t, "conda_pack", "app", map[string]string{"env.tar.gz": "env"}, nil)
	_, err := publish(t, New(), dest, false, a, b)
	if err == nil || !strings.Contains(err.Error(), "app/latest.json") {
		t.Errorf("err = %v", err)
	}
	// Two artifacts holding the same file under the same key share it.
	c := makeArtifact(t, "channel", "ch", map[string]string{"x": "1"}, map[string]string{publishers.MetaLayout: "tree"})
	d := makeArtifact(t, "mirror", "ch", map[string]string{"x": "1"}, map[string]string{publishers.MetaLayout: "tree"})
	rc, err := publish(t, New(), dest, false, c, d)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Stats.Uploaded != 1 {
		t.Errorf("stats %+v", rc.Stats)
	}
}

func TestExecutableKept(t *testing.T) {
	t.Parallel()
	dest := t.TempDir()
	a := makeArtifact(t, "pex", "tool", map[string]string{"tool.pex": "#!/usr/bin/env python3\n"}, nil)
	if err := os.Chmod(filepath.Join(a.Dir, "tool.pex"), 0o755); err != nil {
		t.Fatal(err)
	}
	a.Manifest, _ = artifact.Scan(a.Dir)
	rc, err := publish(t, New(), dest, false, a)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(strings.TrimPrefix(rc.Items[0].Files[0].URLs["file"], "file://"))
	if err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("published pex mode %v, %v", info.Mode(), err)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	a := makeArtifact(t, "pyfiles", "app", appFiles, nil)
	for _, c := range []struct {
		cfg  any
		want string
	}{
		{&Config{}, "dir is empty"},
		{&Config{Dir: "x", Prefix: "../up"}, "prefix"},
		{&Config{Dir: "x", Prefix: "a//b"}, "prefix"},
		{struct{}{}, "configuration"},
	} {
		_, err := New().Publish(context.Background(), &publishers.Request{Config: c.cfg, BaseDir: t.TempDir(), Artifacts: []publishers.Artifact{a}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.cfg, err, c.want)
		}
	}
	// An absolute dir ignores BaseDir.
	abs := t.TempDir()
	if _, err := New().Publish(context.Background(), &publishers.Request{Config: &Config{Dir: abs}, BaseDir: "/nonexistent", Artifacts: []publishers.Artifact{a}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(abs, "app", "latest.json")); err != nil {
		t.Error(err)
	}

	f, diags := hclparse.NewParser().ParseHCL([]byte(`dir = "share"
prefix = "prod"`), "env.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	cfg := New().NewConfig()
	if diags := gohcl.DecodeBody(f.Body, nil, cfg); diags.HasErrors() {
		t.Fatal(diags)
	}
	if !reflect.DeepEqual(cfg, &Config{Dir: "share", Prefix: "prod"}) {
		t.Errorf("decoded %+v", cfg)
	}
	if r := publishers.NewRegistry(New()); len(r.Kinds()) != 1 || r.Kinds()[0] != "local" {
		t.Error("registry")
	}
}
