package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/zclconf/go-cty/cty"
)

func stringList(t *testing.T, v cty.Value) []string {
	t.Helper()
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		out = append(out, e.AsString())
	}
	return out
}

// TestFileFunctionsRelativeToDeclaringFile loads two files, one in a
// subdirectory, and checks that file functions resolve against the
// directory of the file that calls them, both while loading and through
// EvalContext for a builder body.
func TestFileFunctionsRelativeToDeclaringFile(t *testing.T) {
	t.Parallel()
	dir, _ := filepath.Abs(filepath.Join("testdata", "multi"))
	cfg := mustLoad(t, LoadOptions{Dir: dir, Files: []string{"env.hcl", filepath.Join("sub", "more.hcl")}})
	sub := filepath.Join(dir, "sub")

	str := func(name string) string {
		t.Helper()
		l, ok := cfg.Locals[name]
		if !ok || !l.Value.IsWhollyKnown() {
			t.Fatalf("local.%s missing or unknown", name)
		}
		return l.Value.AsString()
	}
	if got := str("root_text"); got != "root data\n" {
		t.Errorf("root file(): %q", got)
	}
	if got := str("root_abs"); got != sub {
		t.Errorf("root abspath(): %q, want %q", got, sub)
	}
	if got := str("greeting"); got != "hello from sub" {
		t.Errorf("sub file(): %q", got)
	}
	if got := str("data_dir"); got != filepath.Join(sub, "data") {
		t.Errorf("sub abspath(): %q", got)
	}
	if got := str("from_root"); got != "root data\n" {
		t.Errorf("cross-file local: %q", got)
	}
	raw, err := os.ReadFile(filepath.Join(sub, "data", "greeting.txt"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if got := str("digest"); got != hex.EncodeToString(sum[:]) {
		t.Errorf("filesha256: %s", got)
	}
	if got := strings.Join(stringList(t, cfg.Locals["py_files"].Value), ","); got != "nested/deep.py,top.py" {
		t.Errorf("fileset **: %s", got)
	}
	if got := strings.Join(stringList(t, cfg.Locals["all"].Value), ","); got != "data/nested/deep.py,data/notes.md" {
		t.Errorf("fileset {}: %s", got)
	}

	tgt := cfg.Targets["target.pyfiles.app"]
	if tgt == nil {
		t.Fatal("target.pyfiles.app missing")
	}
	if tgt.BaseDir != sub {
		t.Fatalf("BaseDir %q, want %q", tgt.BaseDir, sub)
	}
	var bc struct {
		Environment string   `hcl:"environment"`
		Readme      string   `hcl:"readme"`
		Sources     []string `hcl:"sources"`
	}
	if diags := gohcl.DecodeBody(tgt.Body, cfg.EvalContext(tgt.BaseDir), &bc); diags.HasErrors() {
		t.Fatal(diags)
	}
	if bc.Environment != "environment.ml" || bc.Readme != "q" || strings.Join(bc.Sources, ",") != "nested/deep.py,top.py" {
		t.Errorf("builder config decoded as %+v", bc)
	}
}

// TestVariablePrecedence checks default < environment < var files (later
// files win) < -var, and that Source records the winning layer.
func TestVariablePrecedence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("env.hcl", `
variable "v" {
  default = "default"
}
variable "n" {
  type    = list(number)
  default = [0]
}
`)
	write("one.vars", "v = \"file-one\"\nn = [1]\n")
	write("two.vars", "v = \"file-two\"\n")
	cases := []struct {
		name   string
		opts   LoadOptions
		v      string
		source string
		n      string
	}{
		{"default", LoadOptions{}, "default", "default", "0"},
		{"environment", LoadOptions{Environ: []string{"SPARKENV_VAR_v=env", "SPARKENV_VAR_n=[5, 6]"}}, "env", "environment", "5,6"},
		{"var file", LoadOptions{Environ: []string{"SPARKENV_VAR_v=env"}, VarFiles: []string{"one.vars"}}, "file-one", "var-file", "1"},
		{"later var file", LoadOptions{VarFiles: []string{"one.vars", "two.vars"}}, "file-two", "var-file", "1"},
		{"flag", LoadOptions{Environ: []string{"SPARKENV_VAR_v=env"}, VarFiles: []string{"one.vars"}, Vars: map[string]string{"v": "flag", "n": "[7]"}}, "flag", "flag", "7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Dir = dir
			cfg := mustLoad(t, c.opts)
			v := cfg.Variables["v"]
			if got := v.Value.AsString(); got != c.v || v.Source != c.source {
				t.Errorf("var.v = %q from %s, want %q from %s", got, v.Source, c.v, c.source)
			}
			var nums []string
			for _, e := range cfg.Variables["n"].Value.AsValueSlice() {
				nums = append(nums, e.AsBigFloat().Text('f', -1))
			}
			if got := strings.Join(nums, ","); got != c.n {
				t.Errorf("var.n = %s, want %s", got, c.n)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	kinds := []string{"conda_pack", "squashfs", "pex", "pyfiles", "mirror"}
	for in, want := range map[string]string{
		"conda_pak": "conda_pack",
		"squashfx":  "squashfs",
		"pexx":      "pex",
		"pyfile":    "pyfiles",
		"docker":    "",
		"":          "",
		"px":        "pex",
		"zz":        "",
	} {
		if got := Suggest(in, kinds); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestVersionConstraints(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		constraint, version string
		ok                  bool
	}{
		{">= 0.1", "0.1.0", true},
		{">= 0.1", "0.0.9", false},
		{"> 0.1", "0.1", false},
		{"< 1.0", "0.99.0", true},
		{"<= 1.0", "1.0.0", true},
		{"= 1.2", "1.2.0", true},
		{"1.2", "1.2.1", false},
		{"!= 1.2.1", "1.2.1", false},
		{"~> 0.3", "0.9.1", true},
		{"~> 0.3", "1.0.0", false},
		{"~> 0.3.2", "0.3.9", true},
		{"~> 0.3.2", "0.4.0", false},
		{"~> 0.3.2", "0.3.1", false},
		{">= 0.1, < 0.2", "0.1.5", true},
		{">= 0.1, < 0.2", "0.2.0", false},
		{">= 1.0", "1.0.0-rc.1", false},
		{">= 1.0-rc.1", "v1.0.0", true},
	} {
		cls, err := parseConstraint(c.constraint)
		if err != nil {
			t.Fatalf("%q: %v", c.constraint, err)
		}
		v, err := parseVersion(c.version)
		if err != nil {
			t.Fatalf("%q: %v", c.version, err)
		}
		ok := true
		for _, cl := range cls {
			ok = ok && cl.allows(v)
		}
		if ok != c.ok {
			t.Errorf("%q allows %q = %v, want %v", c.constraint, c.version, ok, c.ok)
		}
	}
	for _, bad := range []string{"", ">=", "1..2", "abc", ">= 1, ", "=> 1"} {
		if _, err := parseConstraint(bad); err == nil {
			t.Errorf("parseConstraint(%q) accepted", bad)
		}
	}
}

// TestEvalContext checks the values a builder sees: addresses for blocks,
// variable and local values, path.root, and a clear failure for env().
func TestEvalContext(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := `
variable "name" {
  default = "app"
}
locals {
  upper = upper(var.name)
}
environment "ml" {
  platform = "linux-64"
  channels = ["conda-forge"]
}
target "pyfiles" "app" {}
publish "local" "dist" {
  targets = [target.pyfiles.app]
}
`
	cfg, diags := Parse("env.hcl", []byte(src), LoadOptions{Dir: dir})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	ctx := cfg.EvalContext(dir)
	for expr, want := range map[string]string{
		`environment.ml`:                  "environment.ml",
		`target.pyfiles.app`:              "target.pyfiles.app",
		`publish.local.dist`:              "publish.local.dist",
		`"${var.name}-${local.upper}"`:    "app-APP",
		`path.root`:                       dir,
		`join(",", [target.pyfiles.app])`: "target.pyfiles.app",
	} {
		val := evalString(t, ctx, expr)
		if val != want {
			t.Errorf("%s = %q, want %q", expr, val, want)
		}
	}
	e, _ := hclParseExpr(`env("HOME")`)
	_, diags = e.Value(ctx)
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "only allowed in variable defaults") {
		t.Errorf("env() outside defaults: %v", diags)
	}
	if len(cfg.Publishes["publish.local.dist"].Targets) != 1 {
		t.Error("publish targets not decoded")
	}
}

func TestValidateSpecRanges(t *testing.T) {
	t.Parallel()
	src := "environment \"ml\" {\n  platform = \"linux-64\"\n  channels = [\"conda-forge\"]\n  dependencies = [\n    \"python\",\n    \"bad!\",\n  ]\n}\n"
	var seen []string
	cfg, diags := Parse("env.hcl", []byte(src), LoadOptions{Dir: t.TempDir(), ValidateSpec: func(s string) error {
		seen = append(seen, s)
		if strings.Contains(s, "!") {
			return errors.New("bang")
		}
		return nil
	}})
	if len(diags) != 1 || diags[0].Subject == nil || diags[0].Subject.Start.Line != 6 || diags[0].Subject.Start.Column != 5 {
		t.Fatalf("want one diagnostic at 6,5, got %v", diags)
	}
	if strings.Join(seen, ",") != "python,bad!" {
		t.Errorf("validator saw %v", seen)
	}
	e := cfg.Environments["ml"]
	if len(e.Dependencies) != 1 || len(e.DependencyRanges) != 1 || e.DependencyRanges[0].Start.Line != 5 {
		t.Errorf("dependencies %v ranges %v", e.Dependencies, e.DependencyRanges)
	}
	if _, ok := e.AttrRanges["dependencies"]; !ok {
		t.Error("AttrRanges lacks dependencies")
	}
}

func TestLoadMissingDefaultFile(t *testing.T) {
	t.Parallel()
	cfg, diags := Load(LoadOptions{Dir: t.TempDir()})
	if cfg == nil || len(diags) != 1 || !strings.Contains(diags[0].Detail, "env.hcl") {
		t.Fatalf("got %v", diags)
	}
}

func TestLocalsReferToTargetsTransitively(t *testing.T) {
	t.Parallel()
	src := `
locals {
  a = target.pyfiles.app
  b = [local.a]
}
target "pyfiles" "app" {}
target "squashfs" "x" {
  from = local.b
}
`
	cfg, diags := Parse("env.hcl", []byte(src), LoadOptions{Dir: t.TempDir()})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	refs := cfg.Targets["target.squashfs.x"].Refs
	var addrs []string
	for _, r := range refs {
		addrs = append(addrs, r.Address)
	}
	if got := strings.Join(addrs, " "); got != "local.a local.b target.pyfiles.app" {
		t.Errorf("refs %s", got)
	}
	if err := refsSorted(refs); err != nil {
		t.Error(err)
	}
}

func evalString(t *testing.T, ctx *hcl.EvalContext, src string) string {
	t.Helper()
	e, diags := hclParseExpr(src)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	v, diags := e.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("%s: %v", src, diags)
	}
	return v.AsString()
}
