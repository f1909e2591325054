package spec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

func TestDebugRender(t *testing.T) {
	if os.Getenv("FX") == "" {
		t.Skip()
	}
	dir, _ := filepath.Abs(filepath.Join("testdata", "errors"))
	name := os.Getenv("FX")
	fx := readFixture(t, dir, name)
	cfg, diags := Load(fx.opts)
	w := hcl.NewDiagnosticTextWriter(os.Stdout, cfg.Files, 120, false)
	w.WriteDiagnostics(diags)
}
