// Package lock is sparkenv's lock file: for each environment the complete,
// solved set of conda package records and pip wheels, with a hash of the
// inputs it was solved from. Installing from a lock needs no solving and no
// channel index, only the package URLs. Encoding is deterministic JSON with
// stable ordering, so diffs of a checked-in lock are readable.
package lock

import (
	"github.com/sparkenv/sparkenv/internal/conda/repodata"
)

// FileName is the lock file written beside the configuration.
const FileName = "sparkenv.lock.json"

// Version is the lock format version.
const Version = 1

// File is a whole lock file.
type File struct {
	Version      int                     `json:"version"`
	Environments map[string]*Environment `json:"environments"`
}

// Environment is one locked environment.
type Environment struct {
	// InputHash is the sha256 of the environment's declared inputs
	// (platform, channels, specs, virtual packages, pip requirements...): a
	// lock whose hash differs from the configuration's is stale.
	InputHash       string            `json:"input_hash"`
	Platform        string            `json:"platform"`
	Channels        []string          `json:"channels"`
	Specs           []string          `json:"specs"`
	VirtualPackages map[string]string `json:"virtual_packages,omitempty"`
	// Packages in install order (dependencies before dependents), each with
	// url, channel, sha256, md5 and size.
	Packages []repodata.Record `json:"packages"`
	Pip      []Wheel           `json:"pip,omitempty"`
}

// Wheel is one locked pip wheel.
type Wheel struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Filename string `json:"filename"`
	URL      string `json:"url"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size,omitempty"`
}

// Resolved is the artifact of an environment node of the build graph, stored
// as ResolvedFileName: the locked environment plus what targets need to lay
// it out. It holds nothing that differs between two machines.
type Resolved struct {
	Name        string       `json:"name"`
	Prefix      string       `json:"prefix"`
	Environment *Environment `json:"environment"`
}

// ResolvedFileName is the file name of a Resolved in an environment artifact.
const ResolvedFileName = "environment.json"
