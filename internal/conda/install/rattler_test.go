package install

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sparkenv/sparkenv/internal/testutil"
)

// readRecords is run by node: it parses every conda-meta record with
// rattler's PackageRecord (which refuses missing or mistyped fields) and
// prints what rattler read, one JSON object a line.
const readRecords = `
const r = require(process.argv[1] + "/dist/rattler.node.cjs");
const fs = require("fs");
const dir = process.argv[2];
for (const f of fs.readdirSync(dir).sort()) {
	if (!f.endsWith(".json")) continue;
	const p = new r.PackageRecord(JSON.parse(fs.readFileSync(dir + "/" + f)));
	console.log(JSON.stringify({file: f, name: p.name, version: p.version.source, build: p.build,
		subdir: p.subdir, noarch: p.noarch === undefined ? "" : String(p.noarch),
		timestamp: p.timestamp ? p.timestamp.getTime() : 0, depends: p.depends, sha256: p.sha256 || ""}));
}
`

// TestCondaMetaReadByRattler checks the records against an independent
// reader: rattler (WASM build) parses each one as a package record.
func TestCondaMetaReadByRattler(t *testing.T) {
	t.Parallel()
	rattler := testutil.Rattler(t)
	node := testutil.Tool(t, "node")
	work := t.TempDir()
	pkgs := filepath.Join(work, "pkgs")
	all := append([]Package{pythonPkg(t, pkgs, "/usr/bin/python3")}, linksDirsClobberPkgs(t, pkgs)...)
	all = append(all, noarchHello(t, pkgs))
	env := filepath.Join(work, "env")
	if _, err := Install(context.Background(), env, all, Options{}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, "-e", readRecords, rattler, filepath.Join(env, "conda-meta")).CombinedOutput()
	if err != nil {
		t.Fatalf("rattler could not read conda-meta: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(all) {
		t.Fatalf("rattler read %d records, want %d:\n%s", len(lines), len(all), out)
	}
	byDist := map[string]Package{}
	for _, p := range all {
		byDist[p.Record.DistName()] = p
	}
	for _, l := range lines {
		var got struct {
			File, Name, Version, Build, Subdir, Noarch, SHA256 string
			Timestamp                                          int64
			Depends                                            []string
		}
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		dist := got.Name + "-" + got.Version + "-" + got.Build
		p, ok := byDist[dist]
		if !ok || got.File != dist+".json" {
			t.Errorf("rattler read %s from %s", dist, got.File)
			continue
		}
		r := p.Record
		if got.Subdir != r.Subdir || got.Noarch != r.Noarch || got.Timestamp != r.Timestamp ||
			got.SHA256 != r.SHA256 || strings.Join(got.Depends, ",") != strings.Join(r.Depends, ",") {
			t.Errorf("rattler read %+v, record is %+v", got, r)
		}
	}
}
