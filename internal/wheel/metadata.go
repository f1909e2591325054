package wheel

import (
	"archive/zip"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// Metadata is what a wheel says about itself, from its METADATA (core
// metadata) and WHEEL files.
type Metadata struct {
	Name           string // as written in METADATA
	Version        string
	RequiresPython string   // "" when unconstrained
	RequiresDist   []string // in file order
	Tags           []Tag    // from WHEEL
	RootIsPurelib  bool
	WheelVersion   string
	// Raw is the METADATA file, byte for byte (a PEP 658 index serves it).
	Raw []byte
}

// maxMetaFile bounds the size of the small text files read into memory.
const maxMetaFile = 16 << 20

// ReadMetadata reads the metadata of the wheel at wheelPath.
func ReadMetadata(wheelPath string) (*Metadata, error) {
	zr, err := zip.OpenReader(wheelPath)
	if err != nil {
		return nil, fmt.Errorf("wheel %s: %w", wheelPath, err)
	}
	defer zr.Close()
	files, err := indexZip(&zr.Reader)
	if err != nil {
		return nil, fmt.Errorf("wheel %s: %w", wheelPath, err)
	}
	name, version, _, _, err := ParseFilename(path.Base(strings.ReplaceAll(wheelPath, "\\", "/")))
	if err != nil {
		return nil, err
	}
	distInfo, err := findDistInfo(files, name, version)
	if err != nil {
		return nil, fmt.Errorf("wheel %s: %w", wheelPath, err)
	}
	m, err := readMeta(files, distInfo)
	if err != nil {
		return nil, fmt.Errorf("wheel %s: %w", wheelPath, err)
	}
	return m, nil
}

func readMeta(files map[string]*zip.File, distInfo string) (*Metadata, error) {
	wb, err := readSmall(files, distInfo+"/WHEEL")
	if err != nil {
		return nil, err
	}
	wh := parseHeaders(wb)
	m := &Metadata{WheelVersion: first(wh["wheel-version"])}
	major, _, _ := strings.Cut(m.WheelVersion, ".")
	if major != "1" {
		return nil, fmt.Errorf("%s/WHEEL: Wheel-Version %q is not supported (want 1.x)", distInfo, m.WheelVersion)
	}
	switch strings.ToLower(first(wh["root-is-purelib"])) {
	case "true":
		m.RootIsPurelib = true
	case "false", "":
	default:
		return nil, fmt.Errorf("%s/WHEEL: Root-Is-Purelib %q is not true or false", distInfo, first(wh["root-is-purelib"]))
	}
	for _, t := range wh["tag"] {
		parts := strings.Split(t, "-")
		if len(parts) != 3 {
			return nil, fmt.Errorf("%s/WHEEL: Tag %q is not python-abi-platform", distInfo, t)
		}
		m.Tags = append(m.Tags, Tag{parts[0], parts[1], parts[2]})
	}
	mb, err := readSmall(files, distInfo+"/METADATA")
	if err != nil {
		return nil, err
	}
	mh := parseHeaders(mb)
	m.Raw = mb
	m.Name, m.Version = first(mh["name"]), first(mh["version"])
	m.RequiresPython = first(mh["requires-python"])
	m.RequiresDist = mh["requires-dist"]
	if m.Name == "" || m.Version == "" {
		return nil, fmt.Errorf("%s/METADATA: no Name or Version", distInfo)
	}
	return m, nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// parseHeaders reads RFC 822 style headers (the core metadata and WHEEL
// formats) up to the first empty line; keys are lower-cased, continuation
// lines are joined with a newline, values keep their order.
func parseHeaders(b []byte) map[string][]string {
	out := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), maxMetaFile)
	var key string
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && key != "" {
			vs := out[key]
			vs[len(vs)-1] += "\n" + strings.TrimSpace(line)
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			key = ""
			continue
		}
		key = strings.ToLower(strings.TrimSpace(k))
		out[key] = append(out[key], strings.TrimSpace(v))
	}
	return out
}

// indexZip maps the regular files of a wheel by path, refusing unsafe or
// duplicated names.
func indexZip(zr *zip.Reader) (map[string]*zip.File, error) {
	files := make(map[string]*zip.File, len(zr.File))
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			if err := checkPath(f.Name); err != nil {
				return nil, err
			}
			continue
		}
		if err := checkPath(f.Name); err != nil {
			return nil, err
		}
		if f.Mode()&fs.ModeType != 0 {
			return nil, fmt.Errorf("%s is not a regular file (mode %v)", f.Name, f.Mode())
		}
		if _, dup := files[f.Name]; dup {
			return nil, fmt.Errorf("%s appears twice in the archive", f.Name)
		}
		files[f.Name] = f
	}
	return files, nil
}

// findDistInfo returns the wheel's single top-level .dist-info directory,
// which must belong to the distribution named in the file name.
func findDistInfo(files map[string]*zip.File, name, version string) (string, error) {
	found := map[string]bool{}
	for p := range files {
		top, _, ok := strings.Cut(p, "/")
		if ok && strings.HasSuffix(top, ".dist-info") {
			found[top] = true
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("want exactly one .dist-info directory, found %d", len(found))
	}
	var dir string
	for d := range found {
		dir = d
	}
	stem := strings.TrimSuffix(dir, ".dist-info")
	i := strings.LastIndex(stem, "-")
	if i < 0 || Normalize(stem[:i]) != name {
		return "", fmt.Errorf("%s does not belong to %s (the file name's project)", dir, name)
	}
	if stem[i+1:] != version && Normalize(stem[i+1:]) != Normalize(version) {
		return "", fmt.Errorf("%s does not belong to version %s (the file name's version)", dir, version)
	}
	return dir, nil
}

func readSmall(files map[string]*zip.File, name string) ([]byte, error) {
	f := files[name]
	if f == nil {
		return nil, fmt.Errorf("%s is missing", name)
	}
	if f.UncompressedSize64 > maxMetaFile {
		return nil, fmt.Errorf("%s is too large", name)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxMetaFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return b, nil
}
