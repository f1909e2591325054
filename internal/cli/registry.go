package cli

import (
	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/pyfiles"
	"github.com/sparkenv/sparkenv/builders/squashfs"
	"github.com/sparkenv/sparkenv/planner"
	"github.com/sparkenv/sparkenv/publishers"
	"github.com/sparkenv/sparkenv/publishers/local"
	"github.com/sparkenv/sparkenv/publishers/s3"
)

// defaultRegistries lists every target and publish kind sparkenv knows. A
// new kind is a package under builders/ or publishers/ plus one line here.
func defaultRegistries() planner.Registries {
	return planner.Registries{
		Builders: builders.NewRegistry(append([]builders.Builder{
			pyfiles.New(),
			squashfs.New(),
		}, testBuilders...)...),
		Publishers: publishers.NewRegistry(
			local.New(),
			s3.New(),
		),
	}
}

// testBuilders are kinds registered by this package's tests only.
var testBuilders []builders.Builder
