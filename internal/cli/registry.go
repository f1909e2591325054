package cli

import (
	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/bootstrap"
	"github.com/sparkenv/sparkenv/builders/condamirror"
	"github.com/sparkenv/sparkenv/builders/condapack"
	"github.com/sparkenv/sparkenv/builders/pex"
	"github.com/sparkenv/sparkenv/builders/pipmirror"
	"github.com/sparkenv/sparkenv/builders/pyfiles"
	"github.com/sparkenv/sparkenv/builders/squashfs"
	"github.com/sparkenv/sparkenv/builders/venvpack"
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
			bootstrap.New(),
			condamirror.New(),
			condapack.New(),
			pex.New(),
			pipmirror.New(),
			pyfiles.New(),
			squashfs.New(),
			venvpack.New(),
		}, testBuilders...)...),
		Publishers: publishers.NewRegistry(
			local.New(),
			s3.New(),
		),
	}
}

// testBuilders are kinds registered by this package's tests only.
var testBuilders []builders.Builder
