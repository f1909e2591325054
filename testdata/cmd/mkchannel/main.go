package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/sparkenv/sparkenv/internal/conda/fixture"
)

func main() {
	t := time.Now()
	if err := fixture.QuickstartChannel(context.Background(), os.Args[1]); err != nil {
		panic(err)
	}
	fmt.Println("channel in", time.Since(t))
}
