package condamirror

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// TestConfigDecodes decodes a block body the way the planner does, with
// environments evaluating to their addresses.
func TestConfigDecodes(t *testing.T) {
	src := `
environments = [environment.ml, environment.etl]
shards       = true
html         = false
`
	f, diags := hclsyntax.ParseConfig([]byte(src), "env.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"environment": cty.ObjectVal(map[string]cty.Value{
		"ml": cty.StringVal("environment.ml"), "etl": cty.StringVal("environment.etl"),
	})}}
	cfg := New().NewConfig().(*Config)
	if diags := gohcl.DecodeBody(f.Body, ctx, cfg); diags.HasErrors() {
		t.Fatal(diags)
	}
	no := false
	want := &Config{Environments: []string{"environment.ml", "environment.etl"}, Shards: true, HTML: &no}
	if d := cmp.Diff(want, cfg); d != "" {
		t.Fatal(d)
	}
	if err := New().Validate(cfg, "."); err != nil {
		t.Fatal(err)
	}
}
