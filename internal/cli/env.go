package cli

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/sparkenv/sparkenv/internal/fsutil"
)

func envOr(environ []string, key, def string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key && v != "" {
			return v
		}
	}
	return def
}

// packageCacheDir is the conda/wheel package cache shared by every project
// of the user.
func packageCacheDir(environ []string) string {
	if d := envOr(environ, "SPARKENV_PKGS_DIR", ""); d != "" {
		return d
	}
	if d := envOr(environ, "XDG_CACHE_HOME", ""); d != "" {
		return filepath.Join(d, "sparkenv", "pkgs")
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "sparkenv", "pkgs")
	}
	return filepath.Join(os.TempDir(), "sparkenv-pkgs")
}

// builderEnviron is the whole environment external tools started by
// builders see: enough to find programs and a temp dir, nothing that could
// change an output behind the cache key's back.
func builderEnviron(environ []string) []string {
	out := []string{"LC_ALL=C", "TZ=UTC"}
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v := envOr(environ, k, ""); v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

func hclwriteParse(src []byte, name string) (*hcl.File, hcl.Diagnostics) {
	return hclsyntax.ParseConfig(src, name, hcl.InitialPos)
}

func writeFileAtomic(p string, b []byte) error {
	info, err := os.Stat(p)
	mode := os.FileMode(0o644)
	if err == nil {
		mode = info.Mode().Perm()
	}
	return fsutil.WriteFile(p, b, mode)
}
