// Package publishers defines how built artifacts leave the machine: a
// Publisher puts the files of one or more targets somewhere (a folder, an S3
// bucket) under immutable, content-addressed names, then writes small
// pointer objects last. Publishing the same content twice transfers nothing.
// One package per kind lives below this one.
package publishers

import (
	"context"
	"io"

	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/internal/registry"
)

// Publisher puts artifacts somewhere.
type Publisher interface {
	Kind() string
	Version() string
	// NewConfig returns a pointer to a zero configuration struct with hcl
	// tags; the planner decodes the block body (less `targets`) into it.
	NewConfig() any
	Publish(ctx context.Context, req *Request) (*Receipt, error)
}

// Request is everything one publish may read.
type Request struct {
	Address   string // "publish.s3.repo"
	Name      string
	Config    any
	BaseDir   string
	Artifacts []Artifact // sorted by address
	DryRun    bool
	Log       io.Writer
	Jobs      int
}

// Artifact is the output of one target.
type Artifact struct {
	Address  string // "target.pyfiles.app"
	Kind     string
	Name     string
	Dir      string // the files, read-only
	Manifest artifact.Manifest
	Metadata map[string]string
}

// Receipt tells where everything went. It is written beside the build
// results and read by the runtime wiring (spark-args, bootstrap scripts).
type Receipt struct {
	Address string        `json:"address"`
	Kind    string        `json:"kind"`
	Items   []ReceiptItem `json:"items"`
	Stats   PublishStats  `json:"stats"`
}

// ReceiptItem is one published artifact.
type ReceiptItem struct {
	Target string `json:"target"` // address of the target
	// Files maps each artifact file path to where it was put.
	Files []PublishedFile `json:"files"`
	// Pointer is the stable name that points at the current content, if any.
	Pointer *PublishedFile `json:"pointer,omitempty"`
	// Root is the location of the artifact as a whole (a channel's base URL).
	Root map[string]string `json:"root,omitempty"`
}

// PublishedFile is one file and its URLs by scheme ("file", "s3", "s3a",
// "https", "website").
type PublishedFile struct {
	Path   string            `json:"path"`
	SHA256 string            `json:"sha256"`
	Size   int64             `json:"size"`
	URLs   map[string]string `json:"urls"`
}

// PublishStats counts what a publish did.
type PublishStats struct {
	Uploaded      int   `json:"uploaded"`
	Skipped       int   `json:"skipped"`
	UploadedBytes int64 `json:"uploaded_bytes"`
}

// Registry maps kinds to publishers.
type Registry = registry.Registry[Publisher]

// NewRegistry returns a registry holding the given publishers; registering a
// kind twice panics.
func NewRegistry(vs ...Publisher) *Registry { return registry.New("publishers", vs...) }
