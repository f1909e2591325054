package pip

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/sparkenv/sparkenv/internal/fsutil"
	"github.com/sparkenv/sparkenv/internal/wheel"
)

// IndexFile is one distribution file of a simple index.
type IndexFile struct {
	Project  string // project name as its metadata writes it
	Filename string
	// URL is the file's address as the project page links it: relative to
	// the page (e.g. "../../packages/a-1.0-py3-none-any.whl") or absolute;
	// without a fragment.
	URL            string
	SHA256         string
	Size           int64
	RequiresPython string // "" when unconstrained
	// MetadataSHA256, when set, says that the file's core metadata is
	// served at URL + ".metadata" with this sha256 (PEP 658/714), so pip
	// resolves without downloading the wheel.
	MetadataSHA256 string
	// Version of the file's distribution, for the PEP 691 versions list.
	Version string
}

// APIVersion is the simple repository API version the index declares
// (PEP 629; 1.1 adds size and versions to the JSON form, PEP 700).
const APIVersion = "1.1"

// IndexMutable lists the index files whose names do not change with their
// content.
const IndexMutable = "index.html,index.json"

// WriteIndex writes a PEP 503 simple index with its PEP 691 JSON form into
// dir (conventionally ".../simple"): index.html and index.json listing the
// projects, and <normalized-name>/index.html and index.json listing each
// project's files with their sha256, Requires-Python and, when known, core
// metadata hash. PEP 691 serves both forms at one URL by content
// negotiation; a static host cannot, so the JSON is written beside the
// HTML under the name index.json, and clients that ask for HTML (pip does)
// get the HTML. Output is deterministic: projects and files are sorted.
func WriteIndex(dir string, files []IndexFile) error {
	byProject := map[string][]IndexFile{}
	display := map[string]string{}
	for _, f := range files {
		if _, _, _, _, err := wheel.ParseFilename(f.Filename); err != nil && !strings.HasSuffix(f.Filename, ".tar.gz") && !strings.HasSuffix(f.Filename, ".zip") {
			return fmt.Errorf("simple index: %w", err)
		}
		if f.Project == "" || f.URL == "" || strings.Contains(f.URL, "#") || !isHex64(f.SHA256) {
			return fmt.Errorf("simple index: file %s needs a project, a URL without fragment and a sha256", f.Filename)
		}
		n := wheel.Normalize(f.Project)
		if !validProject.MatchString(n) {
			return fmt.Errorf("simple index: %q is not a project name", f.Project)
		}
		byProject[n] = append(byProject[n], f)
		if d, ok := display[n]; !ok || f.Project < d {
			display[n] = f.Project
		}
	}
	names := make([]string, 0, len(byProject))
	for n := range byProject {
		names = append(names, n)
	}
	sort.Strings(names)

	var root strings.Builder
	root.WriteString(htmlHead("Simple index"))
	type jsonProject struct {
		Name string `json:"name"`
	}
	rootJSON := struct {
		Meta     map[string]string `json:"meta"`
		Projects []jsonProject     `json:"projects"`
	}{Meta: map[string]string{"api-version": APIVersion}, Projects: []jsonProject{}}
	for _, n := range names {
		fmt.Fprintf(&root, "    <a href=\"%s/\">%s</a><br>\n", n, html.EscapeString(display[n]))
		rootJSON.Projects = append(rootJSON.Projects, jsonProject{Name: display[n]})
	}
	root.WriteString("  </body>\n</html>\n")
	if err := fsutil.WriteFile(filepath.Join(dir, "index.html"), []byte(root.String()), 0o644); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, "index.json"), rootJSON); err != nil {
		return err
	}

	type jsonFile struct {
		Filename       string            `json:"filename"`
		URL            string            `json:"url"`
		Hashes         map[string]string `json:"hashes"`
		RequiresPython *string           `json:"requires-python,omitempty"`
		Size           int64             `json:"size"`
		CoreMetadata   any               `json:"core-metadata"`
		DistInfoMeta   any               `json:"dist-info-metadata"`
		Yanked         bool              `json:"yanked"`
	}
	for _, n := range names {
		fs := byProject[n]
		sort.Slice(fs, func(i, j int) bool { return fs[i].Filename < fs[j].Filename })
		var page strings.Builder
		page.WriteString(htmlHead("Links for " + display[n]))
		pj := struct {
			Meta     map[string]string `json:"meta"`
			Name     string            `json:"name"`
			Versions []string          `json:"versions"`
			Files    []jsonFile        `json:"files"`
		}{Meta: map[string]string{"api-version": APIVersion}, Name: n, Versions: []string{}, Files: []jsonFile{}}
		seenFile, seenVersion := map[string]bool{}, map[string]bool{}
		for _, f := range fs {
			if seenFile[f.Filename] {
				return fmt.Errorf("simple index: %s is listed twice", f.Filename)
			}
			seenFile[f.Filename] = true
			attrs := ""
			if f.RequiresPython != "" {
				attrs += fmt.Sprintf(" data-requires-python=\"%s\"", html.EscapeString(f.RequiresPython))
			}
			jf := jsonFile{Filename: f.Filename, URL: f.URL, Hashes: map[string]string{"sha256": f.SHA256}, Size: f.Size, CoreMetadata: false, DistInfoMeta: false}
			if f.RequiresPython != "" {
				rp := f.RequiresPython
				jf.RequiresPython = &rp
			}
			if f.MetadataSHA256 != "" {
				attrs += fmt.Sprintf(" data-dist-info-metadata=\"sha256=%s\" data-core-metadata=\"sha256=%s\"", f.MetadataSHA256, f.MetadataSHA256)
				jf.CoreMetadata = map[string]string{"sha256": f.MetadataSHA256}
				jf.DistInfoMeta = jf.CoreMetadata
			}
			fmt.Fprintf(&page, "    <a href=\"%s#sha256=%s\"%s>%s</a><br>\n", html.EscapeString(f.URL), f.SHA256, attrs, html.EscapeString(f.Filename))
			pj.Files = append(pj.Files, jf)
			if f.Version != "" && !seenVersion[f.Version] {
				seenVersion[f.Version] = true
				pj.Versions = append(pj.Versions, f.Version)
			}
		}
		sort.Strings(pj.Versions)
		page.WriteString("  </body>\n</html>\n")
		if err := fsutil.WriteFile(filepath.Join(dir, n, "index.html"), []byte(page.String()), 0o644); err != nil {
			return err
		}
		if err := writeJSON(filepath.Join(dir, n, "index.json"), pj); err != nil {
			return err
		}
	}
	return nil
}

var validProject = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

func htmlHead(title string) string {
	return "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"" + APIVersion + "\">\n    <title>" +
		html.EscapeString(title) + "</title>\n  </head>\n  <body>\n    <h1>" + html.EscapeString(title) + "</h1>\n"
}

func writeJSON(p string, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // ">=3.8" stays readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	return fsutil.WriteFile(p, b.Bytes(), 0o644)
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// Link is one anchor of a simple index project page.
type Link struct {
	Filename       string
	URL            string // resolved against the page URL, fragment kept
	RequiresPython string
}

var anchor = regexp.MustCompile(`(?is)<a\s([^>]*)>(.*?)</a\s*>`)
var attr = regexp.MustCompile(`(?is)([a-z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')`)

// ParseProjectPage reads the anchors of a PEP 503 project page, resolving
// hrefs against base. It reads just enough HTML for what simple indexes
// serve; it is used to explain a failed resolution, not to resolve.
func ParseProjectPage(base *url.URL, page []byte) []Link {
	var out []Link
	for _, m := range anchor.FindAllSubmatch(page, -1) {
		var l Link
		for _, a := range attr.FindAllSubmatch(m[1], -1) {
			v := string(a[2]) + string(a[3])
			switch strings.ToLower(string(a[1])) {
			case "href":
				l.URL = html.UnescapeString(v)
			case "data-requires-python":
				l.RequiresPython = html.UnescapeString(v)
			}
		}
		if l.URL == "" {
			continue
		}
		u, err := url.Parse(l.URL)
		if err != nil {
			continue
		}
		if base != nil {
			u = base.ResolveReference(u)
		}
		l.URL = u.String()
		name, err := url.PathUnescape(u.Path[strings.LastIndex(u.Path, "/")+1:])
		if err != nil || name == "" {
			continue
		}
		l.Filename = name
		out = append(out, l)
	}
	return out
}
