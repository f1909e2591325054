package cli

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/sparkenv/sparkenv/internal/testutil"
)

// Every example under examples/ must validate as it is checked in.
func TestExamplesValidate(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(testutil.Root(), "examples", "*", "env.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no examples found")
	}
	for _, f := range dirs {
		dir := filepath.Dir(f)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := Main([]string{"-C", dir, "validate"}, nil, &out, &errb); code != 0 {
				t.Fatalf("validate exited %d:\n%s", code, errb.String())
			}
			// Checked-in examples are formatted canonically.
			out.Reset()
			errb.Reset()
			if code := Main([]string{"-C", dir, "fmt", "-check"}, nil, &out, &errb); code != 0 {
				t.Fatalf("fmt -check exited %d: %s%s", code, out.String(), errb.String())
			}
		})
	}
}
