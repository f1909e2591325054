// Command mkchannel writes the quickstart example's local conda channel: a
// relocatable python made from this machine's CPython (pyenv), small noarch
// libraries and packages with text and binary prefix placeholders. `make
// demo` runs it, so the example builds offline.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/sparkenv/sparkenv/internal/conda/fixture"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mkchannel DIR")
		os.Exit(2)
	}
	if home, _ := fixture.LocalPython("3.11"); home == "" {
		fmt.Fprintln(os.Stderr, "mkchannel: no CPython 3.11 under ~/.pyenv/versions: the example's python package is made from it")
		os.Exit(1)
	}
	if err := fixture.QuickstartChannel(context.Background(), os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "mkchannel:", err)
		os.Exit(1)
	}
}
