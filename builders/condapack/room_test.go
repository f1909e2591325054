package condapack

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/sparkenv/sparkenv/internal/conda/engine"
	"github.com/sparkenv/sparkenv/internal/conda/fixture"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/conda/pkg"
)

// An environment with a legacy binary placeholder is packed for a prefix
// cut to 32 bytes, which still fits into that file.
func TestLegacyBinaryPlaceholderShortensThePrefix(t *testing.T) {
	t.Parallel()
	legacy := pkg.LegacyPlaceholder()
	old := fixture.Package{Name: "oldbin", Version: "1.0", Build: "0", License: "MIT", Files: map[string]fixture.File{
		"lib/oldbin.dat": {Data: []byte("\x00" + legacy + "/share/oldbin\x00end"), Placeholder: pkg.FileModeBinary, PrefixPlaceholder: legacy},
	}}
	dir := t.TempDir()
	ch := filepath.Join(dir, "channel")
	ctx := context.Background()
	if err := fixture.WriteChannel(ctx, ch, []fixture.Package{old}, fixture.ChannelOptions{Subdirs: []string{"linux-64"}}); err != nil {
		t.Fatal(err)
	}
	pkgs := filepath.Join(dir, "pkgs")
	env, err := (&engine.Engine{PkgsDir: pkgs}).Solve(ctx, engine.SolveRequest{Platform: "linux-64", Channels: []string{ch}, Specs: []string{"oldbin"}})
	if err != nil {
		t.Fatal(err)
	}
	req := request(t, &lock.Resolved{Name: "etl", Environment: env}, pkgs, &Config{Environment: "environment.etl"}, 1)
	r, err := New().Build(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	files := readTarGz(t, filepath.Join(req.OutDir, r.Metadata["main"]))
	var m Manifest
	if err := json.Unmarshal(files[ManifestPath], &m); err != nil {
		t.Fatal(err)
	}
	want := []ManifestFile{{Path: "conda-meta/oldbin-1.0-0.json", Mode: "text"}, {Path: "lib/oldbin.dat", Mode: "binary"}}
	if len(m.Prefix) != len(legacy) || !reflect.DeepEqual(m.Files, want) {
		t.Fatalf("manifest %+v", m)
	}
	if want := "\x00" + m.Prefix + "/share/oldbin\x00end"; string(files["lib/oldbin.dat"]) != want {
		t.Fatalf("lib/oldbin.dat = %q, want %q", files["lib/oldbin.dat"], want)
	}
}

func readTarGz(t *testing.T, p string) map[string][]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		io.Copy(&b, tr)
		out[h.Name] = b.Bytes()
	}
}
