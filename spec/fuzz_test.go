package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes through the whole pipeline (parse,
// declare, evaluate, dump) and requires that it never panics and that every
// diagnostic is well formed.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/*/*.hcl", "testdata/*/*/*.hcl"} {
		paths, _ := filepath.Glob(pattern)
		for _, p := range paths {
			src, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	f.Add([]byte(""))
	f.Add([]byte("locals {\n  a = local.a\n}\n"))
	f.Add([]byte("variable \"x\" {\n  type = list(object({a = optional(string, \"z\")}))\n  default = [{}]\n}\n"))
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.txt"), []byte("data"), 0o644); err != nil {
		f.Fatal(err)
	}
	opts := LoadOptions{
		Dir:          dir,
		Vars:         map[string]string{"python": "3.11", "workers": "[1, 2]"},
		Environ:      []string{"SPARKENV_VAR_bucket=b", "HOME=/root"},
		Version:      "0.3.1",
		ValidateSpec: testValidateSpec,
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, diags := Parse("fuzz.hcl", src, opts)
		if cfg == nil {
			t.Fatal("nil Config")
		}
		for _, d := range diags {
			if d.Summary == "" {
				t.Errorf("diagnostic without summary: %#v", d)
			}
		}
		if _, err := cfg.Dump(); err != nil {
			t.Fatal(err)
		}
		_ = cfg.EvalContext(dir)
	})
}

// FuzzVarValue feeds arbitrary type expressions and -var / environment text
// through variable decoding.
func FuzzVarValue(f *testing.F) {
	f.Add("string", "eu-west-1")
	f.Add("number", "many")
	f.Add("list(string)", `["a", 1]`)
	f.Add("map(object({a = optional(number, 1)}))", `{x = {}}`)
	f.Add("object({name = string, tags = optional(list(string), [])})", `{name = "x"}`)
	f.Add("tuple([string, bool])", `["a", true]`)
	f.Add("set(any)", "[1, 2")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, ty, raw string) {
		src := fmt.Sprintf("variable \"v\" {\n  type = %s\n}\nvariable \"w\" {\n  type = %s\n}\nlocals {\n  x = [var.v, var.w]\n}\n", ty, ty)
		cfg, _ := Parse("fuzz.hcl", []byte(src), LoadOptions{
			Dir:     dir,
			Vars:    map[string]string{"v": raw},
			Environ: []string{"SPARKENV_VAR_w=" + raw},
		})
		if cfg == nil {
			t.Fatal("nil Config")
		}
		if _, err := cfg.Dump(); err != nil {
			t.Fatal(err)
		}
	})
}
