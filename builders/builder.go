// Package builders defines what a target kind is: a Builder that turns a
// decoded configuration and its inputs into files, deterministically. One
// package per kind lives below this one; the planner finds them through a
// Registry. Builders never import the planner or spec: everything a build may
// read arrives in its Request.
package builders

import (
	"context"
	"fmt"
	"io"

	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/internal/execx"
	"github.com/sparkenv/sparkenv/internal/registry"
)

// Builder produces the files of one target kind. Identical requests give
// byte-identical outputs.
type Builder interface {
	// Kind is the first label of the target block, e.g. "pyfiles".
	Kind() string
	// Version is mixed into every cache key; bump it when the output of an
	// unchanged configuration changes.
	Version() string
	// NewConfig returns a pointer to a zero configuration struct with hcl
	// tags. The planner decodes the block body into it (gohcl). Fields tagged
	// `key:"-"` do not change the output and are left out of the cache key.
	NewConfig() any
	// Build writes the artifact into req.OutDir.
	Build(ctx context.Context, req *Request) (*Result, error)
}

// InputDeclarer is implemented by builders that read files of the build
// host (a source tree, a requirements file). The planner hashes the listed
// files into the cache key, so a change to any of them rebuilds the target.
type InputDeclarer interface {
	// Inputs lists absolute paths of regular files the build will read.
	// Relative paths in cfg are resolved against baseDir, the directory of
	// the file that declares the block.
	Inputs(cfg any, baseDir string) ([]string, error)
}

// Validator is implemented by builders that check a decoded configuration
// before anything runs. It must not touch the file system beyond reading.
type Validator interface {
	Validate(cfg any, baseDir string) error
}

// Request is everything one build may read.
type Request struct {
	Address string // e.g. "target.pyfiles.app"
	Name    string // second label of the block
	Config  any    // the value NewConfig returned, decoded
	BaseDir string // directory of the file declaring the block
	// Inputs are the artifacts of the dependencies, sorted by address.
	Inputs []Input
	// InputFiles are the files returned by InputDeclarer.Inputs, as hashed.
	InputFiles []InputFile
	OutDir     string // empty directory: the artifact is what is here at the end
	TempDir    string // scratch space, removed after the build
	Log        io.Writer
	Runner     *execx.Runner
	// PackageCacheDir is the conda/wheel package cache shared by all builds.
	PackageCacheDir string
	Offline         bool
	Jobs            int // parallelism a builder may use internally
}

// Input is the artifact of one dependency.
type Input struct {
	Address  string // "environment.ml", "target.conda_pack.etl"
	Kind     string // "environment", or the target kind
	Name     string
	Dir      string // read-only directory holding the artifact files
	Manifest artifact.Manifest
	Metadata map[string]string
}

// InputFile is one declared input file with its digest.
type InputFile struct {
	Path   string
	SHA256 string
	Size   int64
}

// Result is what a build reports beside the files in OutDir.
type Result struct {
	// Metadata is small, deterministic information about the artifact that
	// later steps need (e.g. "main": the primary file's name). It is part
	// of the action's output and so of the dependents' cache keys.
	Metadata map[string]string
}

// Find returns the inputs of the given kind.
func (r *Request) Find(kind string) []Input {
	var out []Input
	for _, in := range r.Inputs {
		if in.Kind == kind {
			out = append(out, in)
		}
	}
	return out
}

// Registry maps kinds to builders.
type Registry = registry.Registry[Builder]

// NewRegistry returns a registry holding the given builders; registering a
// kind twice panics.
func NewRegistry(vs ...Builder) *Registry { return registry.New("builders", vs...) }

// ToolVersioner is implemented by builders that run external programs whose
// version can change their output (mksquashfs, a python). The versions are
// part of the cache key.
type ToolVersioner interface {
	ToolVersions(ctx context.Context, cfg any) (map[string]string, error)
}

// ConfigAs returns cfg, the configuration a builder's NewConfig made, as
// a *T, or an error naming the kind when it is something else.
func ConfigAs[T any](kind string, cfg any) (*T, error) {
	c, ok := cfg.(*T)
	if !ok || c == nil {
		return nil, fmt.Errorf("%s: configuration is %T, want %T", kind, cfg, (*T)(nil))
	}
	return c, nil
}
