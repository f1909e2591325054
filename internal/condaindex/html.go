package condaindex

import (
	"fmt"
	"html"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sparkenv/sparkenv/internal/conda/repodata"
	"github.com/sparkenv/sparkenv/internal/fsutil"
)

// The pages carry no times and no host paths, so that they are a pure
// function of the packages.
const pageHead = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>%s</title>
<style>
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; }
th, td { text-align: left; padding: 0.2em 0.8em; border-bottom: 1px solid #ddd; }
td.size { text-align: right; white-space: nowrap; }
code { font-size: 0.85em; }
</style>
</head>
<body>
<h1>%s</h1>
`

const pageTail = "</body>\n</html>\n"

func writeHTML(dir string, subdirs []string, pkgs []Package, opts Options) error {
	bySubdir := map[string][]*repodata.Record{}
	for i := range pkgs {
		r := &pkgs[i].Record
		bySubdir[r.Subdir] = append(bySubdir[r.Subdir], r)
	}
	for _, sd := range subdirs {
		recs := bySubdir[sd]
		sort.Slice(recs, func(i, j int) bool { return recs[i].FileName < recs[j].FileName })
		if err := fsutil.WriteFile(filepath.Join(dir, sd, "index.html"), subdirPage(sd, recs, opts), 0o644); err != nil {
			return fmt.Errorf("index %s: %w", sd, err)
		}
	}
	if err := fsutil.WriteFile(filepath.Join(dir, "index.html"), rootPage(subdirs, bySubdir, opts), 0o644); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	return nil
}

func rootPage(subdirs []string, bySubdir map[string][]*repodata.Record, opts Options) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, pageHead, "conda channel", "conda channel")
	b.WriteString("<table>\n<tr><th>Subdir</th><th>Packages</th><th>Size</th></tr>\n")
	for _, sd := range subdirs {
		var size int64
		for _, r := range bySubdir[sd] {
			size += r.Size
		}
		e := html.EscapeString(sd)
		fmt.Fprintf(&b, "<tr><td><a href=\"%s/\">%s/</a></td><td class=\"size\">%d</td><td class=\"size\">%s</td></tr>\n",
			e, e, len(bySubdir[sd]), humanSize(size))
	}
	b.WriteString("</table>\n")
	if opts.Channeldata {
		b.WriteString("<p><a href=\"channeldata.json\">channeldata.json</a></p>\n")
	}
	b.WriteString(pageTail)
	return []byte(b.String())
}

func subdirPage(sd string, recs []*repodata.Record, opts Options) []byte {
	var b strings.Builder
	e := html.EscapeString(sd)
	fmt.Fprintf(&b, pageHead, e, e)
	b.WriteString("<p><a href=\"../\">../</a> &middot; <a href=\"repodata.json\">repodata.json</a>")
	if opts.Zst {
		b.WriteString(" &middot; <a href=\"repodata.json.zst\">repodata.json.zst</a>")
	}
	if opts.Shards {
		b.WriteString(" &middot; <a href=\"" + repodata.ShardIndexFile + "\">" + repodata.ShardIndexFile + "</a>")
	}
	fmt.Fprintf(&b, "</p>\n<p>%d packages</p>\n", len(recs))
	b.WriteString("<table>\n<tr><th>File</th><th>Size</th><th>SHA-256</th></tr>\n")
	for _, r := range recs {
		fmt.Fprintf(&b, "<tr><td><a href=\"%s\">%s</a></td><td class=\"size\" title=\"%d bytes\">%s</td><td><code>%s</code></td></tr>\n",
			html.EscapeString(url.PathEscape(r.FileName)), html.EscapeString(r.FileName), r.Size, humanSize(r.Size), html.EscapeString(r.SHA256))
	}
	b.WriteString("</table>\n")
	b.WriteString(pageTail)
	return []byte(b.String())
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f /= unit
		if f < unit {
			return fmt.Sprintf("%.1f %s", f, u)
		}
	}
	return fmt.Sprintf("%.1f PiB", f/unit)
}
