// Package channel turns channel names into URLs and fetches a channel's
// per-subdir index (repodata) over http(s), from file:// paths or from S3,
// keeping a revalidated cache of what it downloaded so that repeated solves
// cost one conditional request per subdir, and none when offline.
//
// It never downloads package archives (that is internal/conda/fetch) and
// never writes anywhere but its cache directory.
package channel

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// DefaultAlias is where channel names point unless told otherwise.
const DefaultAlias = "https://conda.anaconda.org"

// Channel is a conda channel: where its subdirs live. Name is what records
// and match specs call it: the name for channels given by name (or whose URL
// starts with the alias), the URL otherwise.
type Channel struct {
	Name    string
	BaseURL string // no trailing slash
}

// SubdirURL is the URL of a subdir's directory, with a trailing slash.
func (c Channel) SubdirURL(subdir string) string {
	return c.BaseURL + "/" + subdir + "/"
}

// ParseChannel reads a channel as users write it: a name ("conda-forge",
// "pytorch/label/nightly") placed under alias (DefaultAlias when empty), an
// http://, https://, file:// or s3://bucket/prefix URL, or an absolute
// path (read as file://). Relative paths are refused: the caller knows what
// they are relative to and must resolve them first.
func ParseChannel(s, alias string) (Channel, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Channel{}, fmt.Errorf("channel: empty channel name")
	}
	if alias == "" {
		alias = DefaultAlias
	}
	if alias != DefaultAlias {
		if !strings.Contains(alias, "://") && !filepath.IsAbs(alias) {
			return Channel{}, fmt.Errorf("channel alias %q: want a URL", alias)
		}
		a, err := ParseChannel(alias, DefaultAlias)
		if err != nil {
			return Channel{}, fmt.Errorf("channel alias: %w", err)
		}
		alias = a.BaseURL
	}
	if filepath.IsAbs(s) {
		p := filepath.ToSlash(filepath.Clean(s))
		if p == "/" {
			return Channel{}, fmt.Errorf("channel %q: the file system root is not a channel", s)
		}
		u := (&url.URL{Scheme: "file", Path: p}).String()
		return Channel{Name: u, BaseURL: strings.TrimRight(u, "/")}, nil
	}
	if i := strings.Index(s, "://"); i > 0 {
		u, err := url.Parse(s)
		if err != nil {
			return Channel{}, fmt.Errorf("channel %q: %w", s, err)
		}
		switch u.Scheme {
		case "http", "https":
			if u.Host == "" {
				return Channel{}, fmt.Errorf("channel %q: no host", s)
			}
		case "s3":
			if u.Host == "" {
				return Channel{}, fmt.Errorf("channel %q: no bucket (want s3://bucket/prefix)", s)
			}
		case "file":
			if u.Host != "" && u.Host != "localhost" {
				return Channel{}, fmt.Errorf("channel %q: file URLs must not name a host", s)
			}
			if u.Path == "" || !strings.HasPrefix(u.Path, "/") || strings.Trim(u.Path, "/") == "" {
				return Channel{}, fmt.Errorf("channel %q: file URLs need an absolute path below the root", s)
			}
		default:
			return Channel{}, fmt.Errorf("channel %q: unsupported scheme %q (use https, http, file or s3)", s, u.Scheme)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return Channel{}, fmt.Errorf("channel %q: a channel URL takes no query or fragment", s)
		}
		base := strings.TrimRight(s, "/")
		name := base
		if rest, ok := strings.CutPrefix(base, alias+"/"); ok && rest != "" {
			name = rest
		}
		return Channel{Name: name, BaseURL: base}, nil
	}
	if strings.HasPrefix(s, ".") || strings.Contains(s, `\`) {
		return Channel{}, fmt.Errorf("channel %q: a relative path; give an absolute path or a file:// URL", s)
	}
	name := strings.Trim(s, "/")
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." {
			return Channel{}, fmt.Errorf("channel %q: empty or dot path segment in a channel name", s)
		}
		for _, c := range part {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				return Channel{}, fmt.Errorf("channel %q: character %q not allowed in a channel name", s, c)
			}
		}
	}
	return Channel{Name: name, BaseURL: alias + "/" + name}, nil
}
