package spec

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/valid")

// fixture holds the options a test file asks for in its leading comments:
//
//	# VAR: name=value        a -var flag
//	# VARFILE: path          a -var-file, relative to the fixture's directory
//	# ENV: KEY=VALUE         an environment entry
//	# VERSION: 0.1.0         the running sparkenv version
//	# EXPECT: summary        a diagnostic whose range is not in a scanned file (-var, environment)
type fixture struct {
	opts    LoadOptions
	expects []string
}

var directiveRe = regexp.MustCompile(`^#\s*(VAR|VARFILE|ENV|VERSION|EXPECT):\s*(.*?)\s*$`)

func readFixture(t *testing.T, dir, name string) fixture {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	fx := fixture{opts: LoadOptions{
		Dir:          dir,
		Files:        []string{name},
		Vars:         map[string]string{},
		ValidateSpec: testValidateSpec,
	}}
	for _, line := range strings.Split(string(src), "\n") {
		m := directiveRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		switch m[1] {
		case "VAR":
			k, v, _ := strings.Cut(m[2], "=")
			fx.opts.Vars[k] = v
		case "VARFILE":
			fx.opts.VarFiles = append(fx.opts.VarFiles, m[2])
		case "ENV":
			fx.opts.Environ = append(fx.opts.Environ, m[2])
		case "VERSION":
			fx.opts.Version = m[2]
		case "EXPECT":
			fx.expects = append(fx.expects, m[2])
		}
	}
	return fx
}

// testValidateSpec stands in for the conda MatchSpec parser, which lives
// elsewhere; it rejects characters no MatchSpec contains.
func testValidateSpec(s string) error {
	if i := strings.IndexAny(s, "@#$%&;"); i >= 0 {
		return fmt.Errorf("unexpected %q", s[i])
	}
	return nil
}

type marker struct {
	file     string
	line     int
	severity hcl.DiagnosticSeverity
	substr   string // in the summary
	detail   string // optional, in the detail: "# ERROR: summary | detail"
	matched  bool
}

var markerRe = regexp.MustCompile(`#\s*(ERROR|WARNING):\s*([^#]*[^#\s])`)

func scanMarkers(t *testing.T, path, name string) []*marker {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*marker
	for i, line := range strings.Split(string(src), "\n") {
		for _, m := range markerRe.FindAllStringSubmatch(line, -1) {
			sev := hcl.DiagError
			if m[1] == "WARNING" {
				sev = hcl.DiagWarning
			}
			summary, detail, _ := strings.Cut(m[2], " | ")
			out = append(out, &marker{file: name, line: i + 1, severity: sev, substr: strings.TrimSpace(summary), detail: strings.TrimSpace(detail)})
		}
	}
	return out
}

func describe(d *hcl.Diagnostic) string {
	sev := "error"
	if d.Severity == hcl.DiagWarning {
		sev = "warning"
	}
	pos := "(no range)"
	if d.Subject != nil {
		pos = posString(*d.Subject)
	}
	return fmt.Sprintf("%s %s: %s: %s", pos, sev, d.Summary, d.Detail)
}

// TestErrors loads every file in testdata/errors and checks that the
// diagnostics are exactly the ones marked with "# ERROR: <summary substring>"
// on the offending lines (of the file itself and of its -var-files). A marker
// may also require text in the detail: "# ERROR: summary | detail".
func TestErrors(t *testing.T) {
	dir, _ := filepath.Abs(filepath.Join("testdata", "errors"))
	names, _ := filepath.Glob(filepath.Join(dir, "*.hcl"))
	if len(names) < 10 {
		t.Fatalf("expected error fixtures in %s, found %d", dir, len(names))
	}
	for _, path := range names {
		name := filepath.Base(path)
		t.Run(strings.TrimSuffix(name, ".hcl"), func(t *testing.T) {
			t.Parallel()
			fx := readFixture(t, dir, name)
			markers := scanMarkers(t, path, name)
			scanned := map[string]bool{name: true}
			for _, vf := range fx.opts.VarFiles {
				rel := filepath.ToSlash(filepath.Clean(vf))
				scanned[rel] = true
				markers = append(markers, scanMarkers(t, filepath.Join(dir, vf), rel)...)
			}
			if len(markers) == 0 && len(fx.expects) == 0 {
				t.Fatal("fixture has no # ERROR: markers")
			}
			cfg, diags := Load(fx.opts)
			if cfg == nil {
				t.Fatal("Load returned a nil Config")
			}
			expects := append([]string(nil), fx.expects...)
			for _, d := range diags {
				checkDiagShape(t, d)
				if d.Subject == nil || !scanned[filepath.ToSlash(d.Subject.Filename)] {
					found := false
					for i, e := range expects {
						if strings.Contains(d.Summary, e) {
							expects = append(expects[:i], expects[i+1:]...)
							found = true
							break
						}
					}
					if !found {
						t.Errorf("unexpected diagnostic: %s", describe(d))
					}
					continue
				}
				found := false
				for _, m := range markers {
					if !m.matched && m.file == filepath.ToSlash(d.Subject.Filename) && m.line == d.Subject.Start.Line &&
						m.severity == d.Severity && strings.Contains(d.Summary, m.substr) && strings.Contains(d.Detail, m.detail) {
						m.matched, found = true, true
						break
					}
				}
				if !found {
					t.Errorf("unmarked diagnostic: %s", describe(d))
				}
			}
			for _, m := range markers {
				if !m.matched {
					t.Errorf("%s:%d: no diagnostic with summary containing %q and detail containing %q", m.file, m.line, m.substr, m.detail)
				}
			}
			for _, e := range expects {
				t.Errorf("no diagnostic with summary containing %q outside the file", e)
			}
			// Diagnostics come out in the same order every time.
			_, again := Load(fx.opts)
			if len(again) != len(diags) {
				t.Errorf("second load gave %d diagnostics, first %d", len(again), len(diags))
			} else {
				for i := range diags {
					if describe(diags[i]) != describe(again[i]) {
						t.Errorf("diagnostic %d differs between loads: %s vs %s", i, describe(diags[i]), describe(again[i]))
					}
				}
			}
			if t.Failed() {
				for _, d := range diags {
					t.Logf("got: %s", describe(d))
				}
			}
		})
	}
}

// checkDiagShape enforces the diagnostic conventions: a short summary and a
// detail written as sentences.
func checkDiagShape(t *testing.T, d *hcl.Diagnostic) {
	t.Helper()
	if d.Summary == "" || len(d.Summary) > 60 || strings.HasSuffix(d.Summary, ".") {
		t.Errorf("summary should be short and without a period: %q", d.Summary)
	}
	if d.Detail == "" || !strings.HasSuffix(strings.TrimSpace(d.Detail), ".") && !strings.HasSuffix(strings.TrimSpace(d.Detail), "?") {
		t.Errorf("detail should be full sentences: %q (%s)", d.Detail, d.Summary)
	}
}

func TestValidGolden(t *testing.T) {
	dir, _ := filepath.Abs(filepath.Join("testdata", "valid"))
	names, _ := filepath.Glob(filepath.Join(dir, "*.hcl"))
	if len(names) == 0 {
		t.Fatal("no valid fixtures")
	}
	for _, path := range names {
		name := filepath.Base(path)
		t.Run(strings.TrimSuffix(name, ".hcl"), func(t *testing.T) {
			t.Parallel()
			fx := readFixture(t, dir, name)
			cfg, diags := Load(fx.opts)
			for _, d := range diags {
				t.Errorf("diagnostic: %s", describe(d))
			}
			got := dumpForGolden(t, cfg)
			golden := strings.TrimSuffix(path, ".hcl") + ".json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./spec -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the loaded configuration (go test ./spec -update rewrites it); got:\n%s", golden, got)
			}
			// Loading is deterministic.
			cfg2, _ := Load(fx.opts)
			if again := dumpForGolden(t, cfg2); !bytes.Equal(got, again) {
				t.Error("two loads of the same files differ")
			}
		})
	}
}

// dumpForGolden replaces the checkout location so golden files are the same
// on every machine.
func dumpForGolden(t *testing.T, cfg *Config) []byte {
	t.Helper()
	b, err := cfg.Dump()
	if err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(b, []byte(cfg.Dir), []byte("$ROOT"))
}

func mustLoad(t *testing.T, opts LoadOptions) *Config {
	t.Helper()
	cfg, diags := Load(opts)
	for _, d := range diags {
		t.Errorf("diagnostic: %s", describe(d))
	}
	if t.Failed() {
		t.FailNow()
	}
	return cfg
}

var errNotSorted = errors.New("not sorted")

func refsSorted(refs []Reference) error {
	if !sort.SliceIsSorted(refs, func(i, j int) bool { return refs[i].Address < refs[j].Address }) {
		return errNotSorted
	}
	for i := 1; i < len(refs); i++ {
		if refs[i].Address == refs[i-1].Address {
			return fmt.Errorf("duplicate %s", refs[i].Address)
		}
	}
	return nil
}

func hclParseExpr(src string) (hcl.Expression, hcl.Diagnostics) {
	return hclsyntax.ParseExpression([]byte(src), "test.hcl", hcl.InitialPos)
}
