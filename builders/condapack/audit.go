package condapack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"
)

// metaRecord is the part of a conda-meta/<dist>.json record Audit and the
// relocation scan read.
type metaRecord struct {
	Name      string `json:"name"`
	PathsData struct {
		Paths []metaPath `json:"paths"`
	} `json:"paths_data"`
}

type metaPath struct {
	Path           string `json:"_path"`
	PathType       string `json:"path_type"`
	FileMode       string `json:"file_mode"`
	SHA256         string `json:"sha256"`
	SHA256InPrefix string `json:"sha256_in_prefix"`
	Placeholder    string `json:"prefix_placeholder"`
}

// parseMeta decodes one conda-meta record.
func parseMeta(b []byte) (*metaRecord, error) {
	var r metaRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	for _, p := range r.PathsData.Paths {
		if !cleanRel(p.Path) {
			return nil, fmt.Errorf("path %q is not a clean relative path", p.Path)
		}
	}
	return &r, nil
}

func cleanRel(p string) bool {
	return p != "" && !strings.HasPrefix(p, "/") && filepath.ToSlash(filepath.Clean(p)) == p && p != ".." &&
		!strings.HasPrefix(p, "../") && !strings.ContainsRune(p, 0)
}

// readMeta reads every package record of the environment at root.
func readMeta(root string) (map[string]*metaRecord, error) {
	dir := filepath.Join(root, "conda-meta")
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	out := map[string]*metaRecord{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("conda-meta: %w", err)
		}
		r, err := parseMeta(b)
		if err != nil {
			return nil, fmt.Errorf("conda-meta/%s: %w", filepath.Base(n), err)
		}
		out[filepath.Base(n)] = r
	}
	return out, nil
}

// AuditReport is what Audit found in an environment tree.
type AuditReport struct {
	// Overwritten are conda-managed files whose content is no longer what
	// conda installed (pip replaced them), prefix-relative and sorted.
	Overwritten []string
	// Missing are conda-managed files that are gone.
	Missing []string
	// Editable are the markers of editable installs (*.egg-link,
	// __editable__* files, dist-info/direct_url.json saying editable).
	Editable []string
}

// Err refuses editable installs: they point at a source tree on the build
// machine that no executor has.
func (r *AuditReport) Err() error {
	if len(r.Editable) == 0 {
		return nil
	}
	return fmt.Errorf("the environment has editable installs, which point outside it and cannot be packed: %s (install those projects as wheels instead)",
		strings.Join(r.Editable, ", "))
}

// Audit checks the environment tree at root before it is packed: every file
// conda-meta lists must still have the content conda installed, and no
// editable install may be present.
func Audit(ctx context.Context, root string, jobs int) (*AuditReport, error) {
	recs, err := readMeta(root)
	if err != nil {
		return nil, err
	}
	type check struct{ path, sum string }
	var checks []check
	seen := map[string]bool{}
	for _, r := range recs {
		for _, p := range r.PathsData.Paths {
			if p.PathType != "" && p.PathType != "hardlink" {
				continue
			}
			sum := p.SHA256InPrefix
			if sum == "" && p.Placeholder == "" {
				sum = p.SHA256
			}
			if sum == "" || seen[p.Path] {
				continue
			}
			seen[p.Path] = true
			checks = append(checks, check{p.Path, strings.ToLower(sum)})
		}
	}
	sort.Slice(checks, func(i, j int) bool { return checks[i].path < checks[j].path })
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	state := make([]int, len(checks)) // 0 ok, 1 overwritten, 2 missing
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for i, c := range checks {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			got, err := hashRegular(filepath.Join(root, filepath.FromSlash(c.path)))
			switch {
			case errors.Is(err, fs.ErrNotExist):
				state[i] = 2
			case err != nil:
				return fmt.Errorf("audit %s: %w", c.path, err)
			case got != c.sum:
				state[i] = 1
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	rep := &AuditReport{}
	for i, s := range state {
		switch s {
		case 1:
			rep.Overwritten = append(rep.Overwritten, checks[i].path)
		case 2:
			rep.Missing = append(rep.Missing, checks[i].path)
		}
	}
	rep.Editable, err = editables(root)
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// hashRegular hashes the file at p; anything but a regular file (reached
// without following a final link) counts as different content.
func hashRegular(p string) (string, error) {
	info, err := os.Lstat(p)
	if err != nil {
		return "", err
	}
	if !info.Mode().IsRegular() {
		return "not a regular file", nil
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// editables lists the editable-install markers in the site-packages
// directories of root.
func editables(root string) ([]string, error) {
	dirs, err := filepath.Glob(filepath.Join(root, "lib", "python*", "site-packages"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range dirs {
		des, err := os.ReadDir(d)
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		rel, _ := filepath.Rel(root, d)
		rel = filepath.ToSlash(rel)
		for _, de := range des {
			n := de.Name()
			switch {
			case strings.HasSuffix(n, ".egg-link"), strings.HasPrefix(n, "__editable__"):
				out = append(out, rel+"/"+n)
			case strings.HasSuffix(n, ".dist-info") && de.IsDir():
				b, err := os.ReadFile(filepath.Join(d, n, "direct_url.json"))
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil {
					return nil, fmt.Errorf("audit: %w", err)
				}
				if directURLEditable(b) {
					out = append(out, rel+"/"+n+"/direct_url.json")
				}
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// directURLEditable reads a PEP 610 direct_url.json: editable installs say
// {"dir_info": {"editable": true}}.
func directURLEditable(b []byte) bool {
	var d struct {
		DirInfo *struct {
			Editable bool `json:"editable"`
		} `json:"dir_info"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(b), &d); err != nil {
		return false
	}
	return d.DirInfo != nil && d.DirInfo.Editable
}
