// Package pipmirror builds the "pip_mirror" target: a static PEP 503
// simple index (with its PEP 691 JSON form and PEP 658 metadata files)
// holding exactly the pip wheels locked for some environments, byte-identical
// to the locked files. Published as a tree, it lets clusters without
// internet access `pip install --index-url <mirror>/simple` the same
// wheels.
//
// The builder never changes a wheel: a file whose sha256 differs from the
// lock is an error. The JSON form is written as index.json beside each
// index.html: PEP 691 serves both at one URL by content negotiation, which
// a static host (S3, a plain folder) does not do, so clients there use the
// HTML (pip does) or ask for index.json by name.
package pipmirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/condaenv"
	"github.com/sparkenv/sparkenv/internal/conda/fetch"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/fsutil"
	"github.com/sparkenv/sparkenv/internal/pip"
	"github.com/sparkenv/sparkenv/internal/wheel"
	"github.com/sparkenv/sparkenv/publishers"
)

// Kind is the target kind.
const Kind = "pip_mirror"

// Config is the body of a pip_mirror target block.
type Config struct {
	// Environments whose locked pip wheels the mirror holds (their union).
	Environments []string `hcl:"environments"`
}

// Builder builds pip mirrors.
type Builder struct{}

var (
	_ builders.Builder   = (*Builder)(nil)
	_ builders.Validator = (*Builder)(nil)
)

// New returns the pip_mirror builder.
func New() *Builder { return &Builder{} }

func (*Builder) Kind() string    { return Kind }
func (*Builder) Version() string { return "1" }
func (*Builder) NewConfig() any  { return &Config{} }

// Validate checks the configuration.
func (*Builder) Validate(cfg any, baseDir string) error {
	c := cfg.(*Config)
	if len(c.Environments) == 0 {
		return fmt.Errorf("a pip_mirror needs its wheels: set environments = [environment.<name>, ...]")
	}
	seen := map[string]bool{}
	for _, e := range c.Environments {
		if !strings.HasPrefix(e, "environment.") {
			return fmt.Errorf("environments: %q is not an environment (write environment.<name>)", e)
		}
		if seen[e] {
			return fmt.Errorf("environments: %s is listed twice", e)
		}
		seen[e] = true
	}
	return nil
}

// Build fetches the union of the environments' wheels through the package
// cache, copies them into packages/ and writes the index under simple/.
func (b *Builder) Build(ctx context.Context, req *builders.Request) (*builders.Result, error) {
	c := req.Config.(*Config)
	if err := b.Validate(c, req.BaseDir); err != nil {
		return nil, err
	}
	log := req.Log
	if log == nil {
		log = io.Discard
	}
	type entry struct {
		w    lock.Wheel
		from string
	}
	byFile := map[string]*entry{}
	for _, addr := range c.Environments {
		res, err := condaenv.Resolved(req, addr)
		if err != nil {
			return nil, err
		}
		for _, w := range res.Environment.Pip {
			if _, _, _, _, err := wheel.ParseFilename(w.Filename); err != nil {
				return nil, fmt.Errorf("%s: %w", addr, err)
			}
			if e := byFile[w.Filename]; e != nil {
				if !strings.EqualFold(e.w.SHA256, w.SHA256) {
					return nil, fmt.Errorf("%s and %s lock different files named %s (sha256 %s and %s): a mirror holds one", e.from, addr, w.Filename, e.w.SHA256, w.SHA256)
				}
				continue
			}
			byFile[w.Filename] = &entry{w: w, from: addr}
		}
	}
	names := make([]string, 0, len(byFile))
	for n := range byFile {
		names = append(names, n)
	}
	sort.Strings(names)
	wheels := make([]lock.Wheel, len(names))
	for i, n := range names {
		wheels[i] = byFile[n].w
	}
	paths, err := pip.Fetch(ctx, wheels, req.PackageCacheDir, pip.FetchOptions{Offline: req.Offline, Jobs: req.Jobs})
	if err != nil {
		return nil, err
	}
	var files []pip.IndexFile
	var total int64
	for i, w := range wheels {
		dest := filepath.Join(req.OutDir, "packages", w.Filename)
		if err := fsutil.LinkOrCopy(paths[i], dest, 0o644); err != nil {
			return nil, fmt.Errorf("pip wheel %s: %w", w.Filename, err)
		}
		// the cache is trusted, the copy is checked: the mirror must serve
		// the locked bytes
		if err := fetch.Verify(dest, w.SHA256); err != nil {
			return nil, fmt.Errorf("pip wheel %s (%s): %w", w.Filename, byFile[w.Filename].from, err)
		}
		fi, err := os.Stat(dest)
		if err != nil {
			return nil, err
		}
		if w.Size > 0 && fi.Size() != w.Size {
			return nil, fmt.Errorf("pip wheel %s: size %d, the lock says %d", w.Filename, fi.Size(), w.Size)
		}
		total += fi.Size()
		md, err := wheel.ReadMetadata(dest)
		if err != nil {
			return nil, err
		}
		// PEP 658: pip reads the metadata file instead of downloading
		// every candidate wheel while it resolves
		sum := sha256.Sum256(md.Raw)
		if err := fsutil.WriteFile(dest+".metadata", md.Raw, 0o644); err != nil {
			return nil, err
		}
		files = append(files, pip.IndexFile{
			Project: md.Name, Version: md.Version, Filename: w.Filename, URL: "../../packages/" + w.Filename,
			SHA256: strings.ToLower(w.SHA256), Size: fi.Size(), RequiresPython: md.RequiresPython,
			MetadataSHA256: hex.EncodeToString(sum[:]),
		})
	}
	if err := pip.WriteIndex(filepath.Join(req.OutDir, "simple"), files); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "pip mirror of %d wheels (%d bytes)\n", len(files), total)
	return &builders.Result{Metadata: map[string]string{
		publishers.MetaLayout:  "tree",
		publishers.MetaMutable: pip.IndexMutable,
		"wheels":               strconv.Itoa(len(files)),
	}}, nil
}
