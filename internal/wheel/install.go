package wheel

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Scheme says where each kind of file of a wheel goes, as absolute
// directories of the staging tree (a venv or conda prefix being built).
type Scheme struct {
	Purelib string // site-packages
	Platlib string // usually the same as Purelib
	Scripts string // bin
	Data    string // the prefix
	// Headers receives .data/headers; pip uses
	// <prefix>/include/site/pythonX.Y/<project>, the project name of the
	// wheel's file name with runs of characters other than letters, digits
	// and '.' written as '-'.
	Headers string
	// Python is the interpreter that scripts run with, as its path will be
	// on the target machine (e.g. /opt/conda/bin/python3.11).
	Python string
	// TargetRoot and StagingRoot, when set, say that StagingRoot will be
	// TargetRoot on the target: every scheme directory must lie below
	// StagingRoot. RECORD paths are relative to site-packages, so they hold
	// for both.
	TargetRoot  string
	StagingRoot string
}

// Options tune Install.
type Options struct {
	Installer string    // written to INSTALLER; default "sparkenv"
	Requested bool      // write REQUESTED: the user asked for this distribution
	Log       io.Writer // may be nil
}

// Installed describes an installed wheel.
type Installed struct {
	Name     string // as in METADATA
	Version  string
	DistInfo string   // staging path of the .dist-info directory
	Files    []string // staging paths of every file written, sorted
	Scripts  []string // staging paths of scripts and entry point launchers, sorted
	Record   []RecordEntry
}

// dataKeys are the subdirectories of <name>-<version>.data.
var dataKeys = []string{"purelib", "platlib", "scripts", "data", "headers"}

// Install installs the wheel at wheelPath into scheme. Every file is checked
// against RECORD before anything is written: a wheel with one bad file
// installs nothing.
func Install(ctx context.Context, wheelPath string, scheme Scheme, opts Options) (*Installed, error) {
	if opts.Installer == "" {
		opts.Installer = "sparkenv"
	}
	if err := checkScheme(&scheme); err != nil {
		return nil, err
	}
	zr, err := zip.OpenReader(wheelPath)
	if err != nil {
		return nil, fmt.Errorf("wheel %s: %w", wheelPath, err)
	}
	defer zr.Close()
	base := filepath.Base(wheelPath)
	fail := func(err error) (*Installed, error) { return nil, fmt.Errorf("wheel %s: %w", base, err) }
	files, err := indexZip(&zr.Reader)
	if err != nil {
		return fail(err)
	}
	name, version, _, _, err := ParseFilename(base)
	if err != nil {
		return nil, err
	}
	distInfo, err := findDistInfo(files, name, version)
	if err != nil {
		return fail(err)
	}
	meta, err := readMeta(files, distInfo)
	if err != nil {
		return fail(err)
	}
	if err := verify(ctx, files, distInfo); err != nil {
		return fail(err)
	}
	dataDir := strings.TrimSuffix(distInfo, ".dist-info") + ".data"
	libDir := scheme.Platlib
	if meta.RootIsPurelib {
		libDir = scheme.Purelib
	}

	type placed struct {
		src    *zip.File
		dest   string
		script bool
	}
	var plan []placed
	skip := map[string]bool{distInfo + "/RECORD": true, distInfo + "/RECORD.jws": true, distInfo + "/RECORD.p7s": true,
		distInfo + "/INSTALLER": true, distInfo + "/REQUESTED": true}
	for p, f := range files {
		if skip[p] {
			continue
		}
		top, rest, _ := strings.Cut(p, "/")
		if top != dataDir {
			if rest != "" && strings.HasSuffix(top, ".data") && isDataDirOf(top, name) {
				return fail(fmt.Errorf("%s: data directory does not match %s", p, dataDir))
			}
			plan = append(plan, placed{src: f, dest: filepath.Join(libDir, filepath.FromSlash(p))})
			continue
		}
		key, sub, ok := strings.Cut(rest, "/")
		if !ok {
			return fail(fmt.Errorf("%s: file directly in %s (want %s/<scheme key>/...)", p, dataDir, dataDir))
		}
		var dir string
		switch key {
		case "purelib":
			dir = scheme.Purelib
		case "platlib":
			dir = scheme.Platlib
		case "scripts":
			dir = scheme.Scripts
		case "data":
			dir = scheme.Data
		case "headers":
			dir = scheme.Headers
		default:
			return fail(fmt.Errorf("%s: unknown scheme key %q (want one of %s)", p, key, strings.Join(dataKeys, ", ")))
		}
		if dir == "" {
			return fail(fmt.Errorf("%s: the install scheme has no %s directory", p, key))
		}
		plan = append(plan, placed{src: f, dest: filepath.Join(dir, filepath.FromSlash(sub)), script: key == "scripts"})
	}
	sort.Slice(plan, func(i, j int) bool { return plan[i].src.Name < plan[j].src.Name })
	seen := map[string]string{}
	for _, pl := range plan {
		if other, dup := seen[pl.dest]; dup {
			return fail(fmt.Errorf("%s and %s both install %s", other, pl.src.Name, pl.dest))
		}
		seen[pl.dest] = pl.src.Name
	}

	var eps []EntryPoint
	if f := files[distInfo+"/entry_points.txt"]; f != nil {
		b, err := readSmall(files, distInfo+"/entry_points.txt")
		if err != nil {
			return fail(err)
		}
		all, err := ParseEntryPoints(b)
		if err != nil {
			return fail(err)
		}
		for _, ep := range all {
			if ep.Group != "console_scripts" && ep.Group != "gui_scripts" {
				continue
			}
			if ep.Attr == "" {
				return fail(fmt.Errorf("entry point %s = %s: a script needs module:function", ep.Name, ep.Module))
			}
			if strings.ContainsAny(ep.Name, "/\\\x00") || ep.Name == "." || ep.Name == ".." || strings.HasPrefix(ep.Name, ".") {
				return fail(fmt.Errorf("entry point name %q is not a file name", ep.Name))
			}
			dest := filepath.Join(scheme.Scripts, ep.Name)
			if _, dup := seen[dest]; dup {
				// a script file of the wheel (or a console script of the
				// same name as a GUI one) keeps the name
				continue
			}
			seen[dest] = "entry point " + ep.Name
			eps = append(eps, ep)
		}
	}
	if (len(eps) > 0 || hasScripts(plan, func(p placed) bool { return p.script })) && scheme.Scripts == "" {
		return fail(fmt.Errorf("the install scheme has no scripts directory"))
	}

	inst := &Installed{Name: meta.Name, Version: meta.Version, DistInfo: filepath.Join(libDir, filepath.FromSlash(distInfo))}
	var written []string
	var rec []RecordEntry
	add := func(dest string, r io.Reader, mode os.FileMode, script bool) error {
		sum, size, err := writeStaged(dest, r, mode)
		if err != nil {
			return err
		}
		written = append(written, dest)
		if script {
			inst.Scripts = append(inst.Scripts, dest)
		}
		// RECORD lists what was installed, with the hashes of the bytes
		// written (scripts were rewritten), relative to site-packages;
		// .pyc files go unhashed, as PEP 376 allows.
		rel, err := filepath.Rel(libDir, dest)
		if err != nil {
			return err
		}
		e := RecordEntry{Path: filepath.ToSlash(rel), Size: -1}
		if !strings.HasSuffix(dest, ".pyc") {
			e.Hash, e.Size = sum, size
		}
		rec = append(rec, e)
		return nil
	}
	for _, pl := range plan {
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		mode := os.FileMode(0o644)
		if pl.src.Mode()&0o111 != 0 {
			mode = 0o755
		}
		var err error
		if pl.script {
			var data []byte
			if data, err = readAll(pl.src); err != nil {
				return fail(err)
			}
			if scheme.Python == "" && bytes.HasPrefix(data, []byte("#!python")) {
				return fail(fmt.Errorf("%s: no interpreter given for its #!python line", pl.src.Name))
			}
			err = add(pl.dest, bytes.NewReader(rewriteShebang(data, scheme.Python)), 0o755, true)
		} else {
			rc, oerr := pl.src.Open()
			if oerr != nil {
				return fail(fmt.Errorf("%s: %w", pl.src.Name, oerr))
			}
			err = add(pl.dest, rc, mode, false)
			rc.Close()
		}
		if err != nil {
			return fail(err)
		}
	}
	for _, ep := range eps {
		if scheme.Python == "" {
			return fail(fmt.Errorf("entry point %s: no interpreter given for its launcher", ep.Name))
		}
		if err := add(filepath.Join(scheme.Scripts, ep.Name), bytes.NewReader(launcher(ep, scheme.Python, opts.Installer)), 0o755, true); err != nil {
			return fail(err)
		}
	}
	distDir := inst.DistInfo
	if err := add(filepath.Join(distDir, "INSTALLER"), strings.NewReader(opts.Installer+"\n"), 0o644, false); err != nil {
		return fail(err)
	}
	if opts.Requested {
		if err := add(filepath.Join(distDir, "REQUESTED"), strings.NewReader(""), 0o644, false); err != nil {
			return fail(err)
		}
	}
	rec = append(rec, RecordEntry{Path: distInfo + "/RECORD", Size: -1})
	sort.Slice(rec, func(i, j int) bool { return rec[i].Path < rec[j].Path })
	recPath := filepath.Join(distDir, "RECORD")
	if _, _, err := writeStaged(recPath, bytes.NewReader(encodeRecord(rec)), 0o644); err != nil {
		return fail(err)
	}
	written = append(written, recPath)
	sort.Strings(written)
	sort.Strings(inst.Scripts)
	inst.Files, inst.Record = written, rec
	if opts.Log != nil {
		fmt.Fprintf(opts.Log, "installed %s %s: %d files\n", meta.Name, meta.Version, len(written))
	}
	return inst, nil
}

func hasScripts[T any](xs []T, f func(T) bool) bool {
	for _, x := range xs {
		if f(x) {
			return true
		}
	}
	return false
}

// isDataDirOf reports whether top looks like the .data directory of the
// distribution name, under any version.
func isDataDirOf(top, name string) bool {
	stem := strings.TrimSuffix(top, ".data")
	i := strings.LastIndex(stem, "-")
	return i > 0 && Normalize(stem[:i]) == name
}

func checkScheme(s *Scheme) error {
	dirs := map[string]*string{"purelib": &s.Purelib, "platlib": &s.Platlib, "scripts": &s.Scripts, "data": &s.Data, "headers": &s.Headers}
	if s.Purelib == "" && s.Platlib == "" {
		return fmt.Errorf("install scheme: no purelib or platlib directory")
	}
	if s.Platlib == "" {
		s.Platlib = s.Purelib
	}
	if s.Purelib == "" {
		s.Purelib = s.Platlib
	}
	if s.Python != "" && !path.IsAbs(filepath.ToSlash(s.Python)) {
		return fmt.Errorf("install scheme: python %q is not an absolute path", s.Python)
	}
	if s.StagingRoot != "" && s.TargetRoot != "" && filepath.Clean(s.StagingRoot) != filepath.Clean(s.TargetRoot) && s.Python != "" {
		if rel, err := filepath.Rel(s.StagingRoot, s.Python); err == nil && !strings.HasPrefix(rel, "..") {
			return fmt.Errorf("install scheme: python %s is in the staging tree; scripts need its path on the target (below %s)", s.Python, s.TargetRoot)
		}
	}
	for _, k := range dataKeys {
		d := *dirs[k]
		if d == "" {
			continue
		}
		if !filepath.IsAbs(d) {
			return fmt.Errorf("install scheme: %s directory %q is not absolute", k, d)
		}
		*dirs[k] = filepath.Clean(d)
		if s.StagingRoot != "" {
			rel, err := filepath.Rel(s.StagingRoot, d)
			if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				return fmt.Errorf("install scheme: %s directory %s is outside the staging root %s", k, d, s.StagingRoot)
			}
		}
	}
	return nil
}

// verify checks every file of the wheel against RECORD: each must be
// listed with a hash that matches.
func verify(ctx context.Context, files map[string]*zip.File, distInfo string) error {
	rb, err := readSmall(files, distInfo+"/RECORD")
	if err != nil {
		return err
	}
	entries, err := ParseRecord(rb)
	if err != nil {
		return fmt.Errorf("%s/RECORD: %w", distInfo, err)
	}
	byPath := make(map[string]RecordEntry, len(entries))
	for _, e := range entries {
		if err := checkPath(e.Path); err != nil {
			return fmt.Errorf("%s/RECORD: %w", distInfo, err)
		}
		byPath[e.Path] = e
	}
	names := make([]string, 0, len(files))
	for p := range files {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		if p == distInfo+"/RECORD" || p == distInfo+"/RECORD.jws" || p == distInfo+"/RECORD.p7s" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		e, ok := byPath[p]
		if !ok {
			return fmt.Errorf("%s is not listed in RECORD", p)
		}
		if e.Hash == "" {
			return fmt.Errorf("%s has no hash in RECORD", p)
		}
		newHash, want, _ := splitHash(e.Hash) // checked by ParseRecord
		rc, err := files[p].Open()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		h := newHash()
		n, err := io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if subtle.ConstantTimeCompare(h.Sum(nil), want) != 1 {
			return fmt.Errorf("%s: content does not match its RECORD hash %s", p, e.Hash)
		}
		if e.Size >= 0 && n != e.Size {
			return fmt.Errorf("%s: size %d does not match its RECORD size %d", p, n, e.Size)
		}
	}
	// A line naming a file the wheel lacks installs nothing; some
	// repackaged wheels carry such lines, and installers accept them.
	return nil
}

// rewriteShebang replaces a leading "#!python" or "#!pythonw" line by one
// that runs python, keeping the line's arguments.
func rewriteShebang(data []byte, python string) []byte {
	if !bytes.HasPrefix(data, []byte("#!python")) {
		return data
	}
	line, rest, ok := bytes.Cut(data, []byte("\n"))
	if !ok {
		rest = nil
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	args := bytes.TrimPrefix(line, []byte("#!python"))
	args = bytes.TrimPrefix(args, []byte("w"))
	if len(args) > 0 && args[0] != ' ' && args[0] != '\t' {
		return data // "#!python3.11" and the like are not the placeholder
	}
	return append([]byte(shebang(python, string(args))), rest...)
}

func readAll(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	return b, nil
}

// writeStaged replaces name with what r holds through a temporary file and
// a rename, and returns the RECORD hash and the size. The staging tree is
// scratch space that a failed build discards, so files are not synced one
// by one; whoever publishes the tree syncs what it packs.
func writeStaged(name string, r io.Reader, mode os.FileMode) (string, int64, error) {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", 0, err
	}
	if fi, err := os.Lstat(name); err == nil && fi.IsDir() {
		return "", 0, fmt.Errorf("%s is a directory", name)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return "", 0, err
	}
	tmp := f.Name()
	h := sha256.New()
	n, werr := io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, mode)
	}
	if werr == nil {
		werr = os.Rename(tmp, name)
	}
	if werr != nil {
		os.Remove(tmp)
		return "", 0, fmt.Errorf("write %s: %w", name, werr)
	}
	return "sha256=" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)), n, nil
}
