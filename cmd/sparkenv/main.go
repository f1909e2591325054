// Command sparkenv builds, publishes and wires Python environments for Spark
// clusters from declarative env.hcl files.
package main

import (
	"os"

	"github.com/sparkenv/sparkenv/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
