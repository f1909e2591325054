package spec

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// LoadOptions says where configuration comes from and what the outside world
// contributes to it. Nothing else is consulted (not the process environment,
// and the working directory only when Dir is empty), so a load is
// reproducible from its options.
type LoadOptions struct {
	Dir      string            // working directory; relative Files and VarFiles resolve here; path.root
	Files    []string          // config files; empty means Dir/env.hcl
	Vars     map[string]string // -var name=value (raw text)
	VarFiles []string          // -var-file paths, later files override earlier ones
	Environ  []string          // KEY=VALUE, for SPARKENV_VAR_* and env()
	Version  string            // running sparkenv version, for required_version; empty or unparsable skips the check
	// ValidateSpec, when set, checks each environment dependency (a conda
	// MatchSpec); an error becomes a diagnostic at that list element. It is
	// a function so that spec does not depend on the conda packages.
	ValidateSpec func(string) error
}

// Config is the evaluated configuration. It keeps source ranges everywhere so
// that later stages (planner, builders) can point diagnostics at the source.
type Config struct {
	Dir             string
	Files           map[string]*hcl.File // by filename as used in diagnostic ranges
	RequiredVersion string
	Variables       map[string]*Variable
	Locals          map[string]*Local
	Environments    map[string]*Environment  // by name
	Targets         map[string]*Target       // by address "target.kind.name"
	Publishes       map[string]*Publish      // by address "publish.kind.name"
	SparkConnects   map[string]*SparkConnect // by name

	// broken holds addresses of blocks that were declared but rejected
	// (bad label, invalid body). References to them are not reported again:
	// only the root cause is.
	broken map[string]bool
	// fileOrder ranks filenames for sorting diagnostics.
	fileOrder map[string]int
	// localRefs holds the static references of each local, so that a block
	// referring to a local inherits the local's edges.
	localRefs map[string][]Reference
}

// Variable is an input variable with its final value after applying, in
// increasing precedence, the default, SPARKENV_VAR_* environment variables,
// variable files and -var flags. Value is unknown when it could not be
// determined (the cause was reported).
type Variable struct {
	Name, Description string
	Type              cty.Type
	Value             cty.Value
	Sensitive         bool
	DeclRange         hcl.Range
	// ValueRange is where the final value came from (the default expression,
	// a variable file attribute, or a synthetic range for -var and the
	// environment).
	ValueRange hcl.Range
	// Source says which layer set the value: "default", "environment",
	// "var-file" or "flag".
	Source string
}

// Local is a named value from a locals block.
type Local struct {
	Name      string
	Value     cty.Value
	Expr      hcl.Expression
	DeclRange hcl.Range
}

// Reference is a static address found in an expression, with the range of
// the traversal that names it.
type Reference struct {
	Address string // "target.pyfiles.app", "publish.s3.prod", "environment.ml", "var.x", "local.y", "path.root"
	Range   hcl.Range
}

// Environment is a conda environment declaration.
type Environment struct {
	Name, Address    string // Address is "environment.<name>"
	Platform         string
	Channels         []string
	Dependencies     []string
	VirtualPackages  map[string]string
	ChannelPriority  string // "strict" (default) or "flexible"
	Prefix           string // default "/opt/conda"
	Pip              []string
	PipIndex         string
	PipFindLinks     []string // local paths made absolute against BaseDir; URLs kept
	DeclRange        hcl.Range
	AttrRanges       map[string]hcl.Range // attribute name → range of the whole attribute
	DependencyRanges []hcl.Range          // one per Dependencies entry
	BaseDir          string               // directory of the declaring file
	Refs             []Reference
}

// Target is a build target. Only the arguments shared by every kind are
// decoded here; Body holds the rest for the builder of Kind.
type Target struct {
	Kind, Name, Address string
	Description         string
	DependsOn           []Reference
	Body                hcl.Body    // remaining body without depends_on and description
	Refs                []Reference // every reference in the block, sorted by Address then position, one per Address
	DeclRange           hcl.Range
	KindRange           hcl.Range
	NameRange           hcl.Range
	BaseDir             string
}

// Publish sends the outputs of targets somewhere. Only the shared arguments
// are decoded here; Body holds the rest for the publisher of Kind.
type Publish struct {
	Kind, Name, Address, Description string
	Targets                          []Reference
	DependsOn                        []Reference
	Body                             hcl.Body
	Refs                             []Reference
	DeclRange                        hcl.Range
	KindRange                        hcl.Range
	NameRange                        hcl.Range
	BaseDir                          string
}

func newConfig(dir string) *Config {
	return &Config{
		Dir:           dir,
		Files:         map[string]*hcl.File{},
		Variables:     map[string]*Variable{},
		Locals:        map[string]*Local{},
		Environments:  map[string]*Environment{},
		Targets:       map[string]*Target{},
		Publishes:     map[string]*Publish{},
		SparkConnects: map[string]*SparkConnect{},
		broken:        map[string]bool{},
		fileOrder:     map[string]int{},
		localRefs:     map[string][]Reference{},
	}
}

// SparkConnect is a spark_connect block: where `sparkenv connect push NAME`
// sends which bundles.
type SparkConnect struct {
	Name    string
	Address string // "spark_connect.name"
	// Remote is a Spark Connect connection string, sc://host:port/;params.
	Remote string
	// Bundles are the targets pushed into the session.
	Bundles []Reference
	// Alias is the directory archives unpack into (default "environment").
	Alias string
	// Session is a fixed session id (a UUID); empty means a new one per push.
	Session     string
	Description string
	DeclRange   hcl.Range
	AttrRanges  map[string]hcl.Range
	BaseDir     string
}
