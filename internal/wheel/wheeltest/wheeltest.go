// Package wheeltest writes small, valid wheels for tests of the packages
// that install, resolve and mirror wheels. The archives are deterministic:
// the same Spec gives the same bytes. It never writes outside the given
// directory.
package wheeltest

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Spec describes a wheel.
type Spec struct {
	Name    string // project name as written in METADATA, e.g. "Alpha.Pkg"
	Version string
	Build   string // optional build tag
	Tag     string // "py3-none-any" by default
	// RootIsPurelib defaults to whether the platform tag is "any".
	RootIsPurelib  *bool
	RequiresDist   []string
	RequiresPython string
	// Files maps archive paths to contents: package files at the root and
	// "<name>-<version>.data/<key>/..." files.
	Files map[string]string
	// Executable lists archive paths stored with mode 0755.
	Executable []string
	// EntryPoints is the content of entry_points.txt ("" for none).
	EntryPoints string
	// Corrupt lists archive paths whose stored content differs from the
	// hash recorded in RECORD.
	Corrupt []string
	// Unlisted maps archive paths to contents stored without RECORD lines.
	Unlisted map[string]string
}

var sep = regexp.MustCompile(`[-_.]+`)

// Escaped is the name as it appears in wheel file and directory names.
func Escaped(name string) string { return sep.ReplaceAllString(name, "_") }

// FileName is the wheel's file name.
func (s Spec) FileName() string {
	tag := s.Tag
	if tag == "" {
		tag = "py3-none-any"
	}
	b := ""
	if s.Build != "" {
		b = "-" + s.Build
	}
	return Escaped(s.Name) + "-" + s.Version + b + "-" + tag + ".whl"
}

// DistInfo is the wheel's .dist-info directory name.
func (s Spec) DistInfo() string { return Escaped(s.Name) + "-" + s.Version + ".dist-info" }

// DataDir is the wheel's .data directory name.
func (s Spec) DataDir() string { return Escaped(s.Name) + "-" + s.Version + ".data" }

// Bytes renders the wheel.
func (s Spec) Bytes() ([]byte, error) {
	tag := s.Tag
	if tag == "" {
		tag = "py3-none-any"
	}
	parts := strings.Split(tag, "-")
	if len(parts) != 3 {
		return nil, fmt.Errorf("tag %q is not python-abi-platform", tag)
	}
	pure := parts[2] == "any"
	if s.RootIsPurelib != nil {
		pure = *s.RootIsPurelib
	}
	files := map[string]string{}
	for k, v := range s.Files {
		files[k] = v
	}
	di := s.DistInfo()
	var meta strings.Builder
	fmt.Fprintf(&meta, "Metadata-Version: 2.1\nName: %s\nVersion: %s\n", s.Name, s.Version)
	if s.RequiresPython != "" {
		fmt.Fprintf(&meta, "Requires-Python: %s\n", s.RequiresPython)
	}
	for _, r := range s.RequiresDist {
		fmt.Fprintf(&meta, "Requires-Dist: %s\n", r)
	}
	meta.WriteString("\nA test distribution.\n")
	files[di+"/METADATA"] = meta.String()
	var wh strings.Builder
	fmt.Fprintf(&wh, "Wheel-Version: 1.0\nGenerator: sparkenv-wheeltest\nRoot-Is-Purelib: %v\n", pure)
	for _, py := range strings.Split(parts[0], ".") {
		for _, abi := range strings.Split(parts[1], ".") {
			for _, p := range strings.Split(parts[2], ".") {
				fmt.Fprintf(&wh, "Tag: %s-%s-%s\n", py, abi, p)
			}
		}
	}
	files[di+"/WHEEL"] = wh.String()
	if s.EntryPoints != "" {
		files[di+"/entry_points.txt"] = s.EntryPoints
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	corrupt := map[string]bool{}
	for _, p := range s.Corrupt {
		corrupt[p] = true
	}
	var record strings.Builder
	for _, p := range paths {
		sum := sha256.Sum256([]byte(files[p]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", p, base64.RawURLEncoding.EncodeToString(sum[:]), len(files[p]))
		if corrupt[p] {
			files[p] += "tampered"
		}
	}
	fmt.Fprintf(&record, "%s/RECORD,,\n", di)
	files[di+"/RECORD"] = record.String()
	for k, v := range s.Unlisted {
		files[k] = v
	}
	paths = paths[:0]
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	exec := map[string]bool{}
	for _, p := range s.Executable {
		exec[p] = true
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, p := range paths {
		h := &zip.FileHeader{Name: p, Method: zip.Deflate, Modified: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
		mode := os.FileMode(0o644)
		if exec[p] {
			mode = 0o755
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write([]byte(files[p])); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Write writes the wheel into dir and returns its path.
func Write(dir string, s Spec) (string, error) {
	b, err := s.Bytes()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, s.FileName())
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return "", err
	}
	return p, nil
}
