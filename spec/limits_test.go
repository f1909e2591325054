package spec

import (
	"strings"
	"testing"
)

func TestPaddingLimits(t *testing.T) {
	t.Parallel()
	for _, src := range []string{
		`locals { a = format("%999999999d", 1) }`,
		`locals { a = format("%.999999999f", 1) }`,
		`locals { a = formatlist("%99999999s", ["a"]) }`,
		`locals { a = indent(999999999, "a\nb") }`,
	} {
		_, diags := Parse("env.hcl", []byte(src), LoadOptions{Dir: t.TempDir()})
		if !diags.HasErrors() || !strings.Contains(diags.Error(), "not supported") {
			t.Errorf("%s: %v", src, diags)
		}
	}
	cfg, diags := Parse("env.hcl", []byte(`locals { a = format("%5d|%-3s|%.2f", 1, "x", 1.5) }`), LoadOptions{Dir: t.TempDir()})
	if diags.HasErrors() || cfg.Locals["a"].Value.AsString() != "    1|x  |1.50" {
		t.Errorf("format: %v %#v", diags, cfg.Locals["a"].Value)
	}
}
