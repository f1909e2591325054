package pip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/sparkenv/sparkenv/internal/execx"
	"github.com/sparkenv/sparkenv/internal/wheel"
)

var (
	noMatch      = regexp.MustCompile(`No matching distribution found for ([^\s]+)`)
	fromVersions = regexp.MustCompile(`Could not find a version that satisfies the requirement ([^\n]*?) \(from versions: ([^)]*)\)`)
	reqName      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*`)
	conflict     = regexp.MustCompile(`(?s)(Cannot install .*?conflicting dependencies\.|ResolutionImpossible[^\n]*)`)
)

// explain turns a failed pip run into an error that says which requirement
// has no wheel for the target and why: none at all, source distributions
// only, or wheels for other platforms or Pythons.
func explain(ctx context.Context, runErr error, index string, findLinks []string, t Target, plats []string, client *http.Client) error {
	tail := runErr.Error()
	var ee *execx.Error
	if errors.As(runErr, &ee) {
		tail = ee.Tail
	}
	where := describeSources(index, findLinks)
	target := fmt.Sprintf("%s with python %s (interpreter %s, ABI %s; wheel platforms %s)", t.Platform, t.PythonVersion,
		t.Implementation+strings.ReplaceAll(t.PythonVersion, ".", ""), t.ABI, summarizeTags(plats))
	m := noMatch.FindStringSubmatch(tail)
	if m == nil {
		if c := conflict.FindString(tail); c != "" {
			return fmt.Errorf("pip found no set of wheels satisfying every requirement for %s in %s: %s\n%s", target, where, c, tail)
		}
		return fmt.Errorf("pip could not resolve the requirements for %s in %s: %w", target, where, runErr)
	}
	req := m[1]
	versions := ""
	if fv := fromVersions.FindStringSubmatch(tail); fv != nil {
		versions = fv[2]
	}
	name := wheel.Normalize(reqName.FindString(req))
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	files := listProjectFiles(ctx, name, index, findLinks, client)
	var wheels, sdists []string
	tagSet := map[string]bool{}
	for _, f := range files {
		if n, _, _, tags, err := wheel.ParseFilename(f); err == nil {
			if n == name {
				wheels = append(wheels, f)
				for _, tg := range tags {
					tagSet[tg.String()] = true
				}
			}
			continue
		}
		if isSdistOf(f, name) {
			sdists = append(sdists, f)
		}
	}
	switch {
	case len(wheels) == 0 && len(sdists) > 0:
		return fmt.Errorf("pip requirement %s: %s has only source distributions in %s (%s); sparkenv installs wheels only (pip --only-binary=:all:), so publish a wheel of it for %s",
			req, name, where, strings.Join(limit(sdists, 5), ", "), target)
	case len(wheels) > 0:
		tags := make([]string, 0, len(tagSet))
		for tg := range tagSet {
			tags = append(tags, tg)
		}
		sort.Strings(tags)
		return fmt.Errorf("pip requirement %s: no wheel of %s in %s fits %s (versions pip considered: %s); its wheels are for %s",
			req, name, where, target, orNone(versions), strings.Join(limit(tags, 12), ", "))
	}
	return fmt.Errorf("pip requirement %s: no wheel of %s for %s in %s (versions pip considered: %s)", req, name, target, where, orNone(versions))
}

// summarizeTags shortens the long manylinux series of a target.
func summarizeTags(tags []string) string {
	if len(tags) <= 6 {
		return strings.Join(tags, ", ")
	}
	return fmt.Sprintf("%s, ..., %s (%d tags)", tags[0], strings.Join(tags[len(tags)-3:], ", "), len(tags))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func limit(xs []string, n int) []string {
	if len(xs) <= n {
		return xs
	}
	return append(xs[:n:n], fmt.Sprintf("and %d more", len(xs)-n))
}

func describeSources(index string, findLinks []string) string {
	var parts []string
	if index != "" {
		parts = append(parts, "index "+redact(index))
	}
	for _, f := range findLinks {
		parts = append(parts, "find-links "+redact(f))
	}
	return strings.Join(parts, " and ")
}

// redact hides a password in a URL.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxx")
	}
	return u.String()
}

// isSdistOf reports whether file is a source distribution of project name.
func isSdistOf(file, name string) bool {
	for _, ext := range []string{".tar.gz", ".zip", ".tar.bz2", ".tgz"} {
		if stem, ok := strings.CutSuffix(file, ext); ok {
			i := strings.LastIndex(stem, "-")
			return i > 0 && wheel.Normalize(stem[:i]) == name
		}
	}
	return false
}

// listProjectFiles returns the file names the sources offer for a project,
// as well as it can: errors only make the explanation vaguer.
func listProjectFiles(ctx context.Context, name, index string, findLinks []string, client *http.Client) []string {
	var out []string
	if index != "" {
		if base, err := url.Parse(strings.TrimSuffix(index, "/") + "/" + name + "/"); err == nil {
			if page, err := get(ctx, base.String(), client); err == nil {
				for _, l := range ParseProjectPage(base, page) {
					out = append(out, l.Filename)
				}
			}
		}
	}
	for _, fl := range findLinks {
		if !strings.Contains(fl, "://") || strings.HasPrefix(fl, "file://") {
			dir := strings.TrimPrefix(fl, "file://")
			ents, err := os.ReadDir(dir)
			if err != nil {
				continue
			}
			for _, e := range ents {
				out = append(out, e.Name())
			}
			continue
		}
		base, err := url.Parse(fl)
		if err != nil {
			continue
		}
		if page, err := get(ctx, fl, client); err == nil {
			for _, l := range ParseProjectPage(base, page) {
				out = append(out, l.Filename)
			}
		}
	}
	return out
}

func get(ctx context.Context, u string, client *http.Client) ([]byte, error) {
	rq, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	rq.Header.Set("Accept", "text/html")
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(rq)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 32<<20))
}
