// Package cli is sparkenv's command line: it parses flags, runs the planner
// and renders diagnostics, progress and results. Main never calls os.Exit,
// so commands can be tested in-process.
package cli

import (
	"fmt"
	"io"
)

// Version is the sparkenv version.
var Version = "0.1.0-dev"

// Main runs sparkenv with args and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fmt.Fprintln(stdout, "sparkenv", Version)
	return 0
}
