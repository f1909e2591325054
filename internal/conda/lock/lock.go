// Package lock is sparkenv's lock file: for each environment the complete,
// solved set of conda package records and pip wheels, with a hash of the
// inputs it was solved from. Installing from a lock needs no solving and no
// channel index, only the package URLs. Encoding is deterministic JSON with
// stable ordering, so diffs of a checked-in lock are readable.
package lock

import (
	"fmt"
	"github.com/sparkenv/sparkenv/internal/fsutil"
	"os"
	"strings"

	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

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

// Inputs are what an environment is solved from.
type Inputs struct {
	Platform        string            `json:"platform"`
	Channels        []string          `json:"channels"`
	Specs           []string          `json:"specs"`
	VirtualPackages map[string]string `json:"virtual_packages"`
	ChannelPriority string            `json:"channel_priority"`
	Pip             []string          `json:"pip"`
	PipIndex        string            `json:"pip_index"`
	PipFindLinks    []string          `json:"pip_find_links"`
}

// InputHash is the sha256 of the canonical encoding of in.
func InputHash(in Inputs) string {
	b, err := json.Marshal(in)
	if err != nil {
		panic(err) // Inputs always encodes
	}
	sum := sha256.Sum256(append([]byte("sparkenv.lock.inputs.v1\n"), b...))
	return hex.EncodeToString(sum[:])
}

// Read parses a lock file.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if f.Version != Version {
		return nil, fmt.Errorf("%s: lock format version %d is not supported (want %d)", path, f.Version, Version)
	}
	if f.Environments == nil {
		f.Environments = map[string]*Environment{}
	}
	return &f, nil
}

// Encode renders f deterministically: sorted keys, two-space indentation,
// a final newline.
func Encode(f *File) ([]byte, error) {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Write replaces the lock file at path atomically.
func Write(path string, f *File) error {
	b, err := Encode(f)
	if err != nil {
		return err
	}
	return fsutil.WriteFile(path, b, 0o644)
}

// Explicit renders env as a CEP 23 explicit spec file: package URLs in
// install order, each with its checksum, which `conda create --file`
// installs with no solving.
func Explicit(env *Environment) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# This file may be used to create an environment using:\n# $ conda create --name <env> --file <this file>\n# platform: %s\n@EXPLICIT\n", env.Platform)
	for _, r := range env.Packages {
		switch {
		case r.SHA256 != "":
			fmt.Fprintf(&b, "%s#sha256:%s\n", r.URL, r.SHA256)
		case r.MD5 != "":
			fmt.Fprintf(&b, "%s#%s\n", r.URL, r.MD5)
		default:
			fmt.Fprintln(&b, r.URL)
		}
	}
	return []byte(b.String())
}
