package condapack

import (
	"context"
	"fmt"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/condaenv"
	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/internal/conda/fetch"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/conda/pkg"
)

// packBase is the start of every packing prefix.
const packBase = "/opt/sparkenv-conda-pack/env"

// maxRoom is the length of modern binary placeholders.
const maxRoom = 255

// binaryRoom is the longest prefix every binary-mode placeholder of env can
// hold: 255, unless a package still carries a shorter one (the legacy
// 32-character placeholder). It reads the packages' info/ from the shared
// package cache, where installing puts them anyway.
func binaryRoom(ctx context.Context, req *builders.Request, env *lock.Environment) (int, error) {
	paths, err := condaenv.Engine(req).Fetch(ctx, env)
	if err != nil {
		return 0, err
	}
	cache := &fetch.Cache{Dir: req.PackageCacheDir, Extract: func(ctx context.Context, archive, dest string) error {
		return pkg.Extract(ctx, archive, dest, pkg.ExtractOptions{})
	}}
	room := maxRoom
	for i, r := range env.Packages {
		sum := r.SHA256
		if sum == "" {
			if sum, _, err = artifact.HashFile(paths[i]); err != nil {
				return 0, err
			}
		}
		dir, err := cache.Extracted(ctx, paths[i], sum)
		if err != nil {
			return 0, fmt.Errorf("extract %s: %w", r.DistName(), err)
		}
		info, err := pkg.ReadInfoDir(dir)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", r.DistName(), err)
		}
		for _, p := range info.Paths {
			if p.FileMode == pkg.FileModeBinary && p.PrefixPlaceholder != "" && len(p.PrefixPlaceholder) < room {
				room = len(p.PrefixPlaceholder)
			}
		}
	}
	if room <= len(packBase) {
		return 0, fmt.Errorf("a package has a binary placeholder of only %d bytes, too short to relocate; set dest_prefix", room)
	}
	return room, nil
}
