package connect

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sparkenv/sparkenv/internal/artifact"
)

// Artifact is one local file to place in a Spark Connect session.
type Artifact struct {
	// Name is the artifact's name in the session: a kind prefix and a file
	// name, e.g. "archives/env-0123456789ab.tar.gz#environment",
	// "pyfiles/deps.zip", "files/env.pex", "jars/udf.jar", "cache/<sha256>".
	Name string
	// Path is the local file sent.
	Path string
	// Size is the file's size; 0 means "stat the file".
	Size int64
	// SHA256 is the hex digest of the file, if known. Push verifies the
	// bytes it sends against it, and a name carrying the digest's first 12
	// characters is known to be content-addressed (see ContentAddressed).
	SHA256 string
	// hashedAs is the file's identity when NewArtifact hashed it; while it
	// is unchanged, Push need not read the file twice to check the digest.
	hashedAs fileID
}

// The kinds of artifact a session knows, as name prefixes.
const (
	KindJars     = "jars"
	KindPyFiles  = "pyfiles"
	KindArchives = "archives"
	KindFiles    = "files"
	KindCache    = "cache"
	KindClasses  = "classes"
)

// digestLen is how much of a sha256 goes into a content-addressed name:
// 48 bits tell bundles of one user apart and keep names readable.
const digestLen = 12

// ArchiveName is the name of an archive that executors unpack into a
// directory called alias ("archives/<file>#<alias>"); with no alias the
// directory is named after the file.
func ArchiveName(file, alias string) string {
	n := KindArchives + "/" + filepath.Base(file)
	if alias != "" {
		n += "#" + alias
	}
	return n
}

// PyFileName is the name of a .py, .zip or .egg file put on the Python
// workers' sys.path.
func PyFileName(file string) string { return KindPyFiles + "/" + filepath.Base(file) }

// FileName is the name of a plain file fetched into the working directory of
// the session's Python workers (e.g. a PEX).
func FileName(file string) string { return KindFiles + "/" + filepath.Base(file) }

// JarName is the name of a jar added to the session's class path.
func JarName(file string) string { return KindJars + "/" + filepath.Base(file) }

// CacheName is the name of a blob in the session's cache, the only kind of
// artifact ArtifactStatus reports on.
func CacheName(sha256 string) string { return KindCache + "/" + sha256 }

// ContentAddressed puts the first 12 hex digits of sha256 in name's file
// name, so that a name always means the same bytes: re-pushing a bundle is
// then safe on every server (Spark 3.5 refuses any second add of a name,
// 4.x refuses one with different bytes). "archives/env.tar.gz#environment"
// becomes "archives/env-<d12>.tar.gz#environment". A ".py" pyfile keeps its
// file name, which is its module name, and gets the digest as a directory
// instead ("pyfiles/<d12>/mod.py"): workers fetch it by file name. Names
// already carrying the digest, cache names, and any name when sha256 is not
// a hex digest are returned unchanged.
func ContentAddressed(name, sha256 string) string {
	if len(sha256) < digestLen || !isHex(sha256) {
		return name
	}
	d := strings.ToLower(sha256[:digestLen])
	kind, file, alias := SplitName(name)
	if kind == KindCache || strings.Contains(file, d) {
		return name
	}
	dir, base := path.Split(file)
	if kind == KindPyFiles && strings.EqualFold(path.Ext(base), ".py") {
		base = d + "/" + base
	} else {
		stem, ext := splitExt(base)
		base = stem + "-" + d + ext
	}
	n := kind + "/" + dir + base
	if alias != "" {
		n += "#" + alias
	}
	return n
}

// IsContentAddressed reports whether a's name carries the start of its
// SHA256, so that an artifact of that name already in a session holds the
// same bytes.
func IsContentAddressed(a Artifact) bool {
	if len(a.SHA256) < digestLen || !isHex(a.SHA256) {
		return false
	}
	_, file, _ := SplitName(a.Name)
	if strings.HasPrefix(a.Name, KindCache+"/") {
		return strings.EqualFold(file, a.SHA256)
	}
	return strings.Contains(file, strings.ToLower(a.SHA256[:digestLen]))
}

// splitExt splits a file name before its extension, treating the
// compressed-tar suffixes (".tar.gz", ".tar.zst", …) as one extension.
func splitExt(base string) (stem, ext string) {
	lower := strings.ToLower(base)
	if i := strings.LastIndex(lower, ".tar."); i > 0 && !strings.Contains(lower[i+5:], ".") {
		return base[:i], base[i:]
	}
	ext = path.Ext(base)
	return base[:len(base)-len(ext)], ext
}

// SplitName splits an artifact name into its kind (the first path segment),
// the rest of the path and, for archives, the alias after '#'.
func SplitName(name string) (kind, file, alias string) {
	kind, file, _ = strings.Cut(name, "/")
	if kind == KindArchives {
		file, alias, _ = strings.Cut(file, "#")
	}
	return kind, file, alias
}

// CheckName refuses names a server would refuse or misplace: empty,
// absolute or escaping paths, unknown kinds, '#' outside archives, a second
// '#', and suffixes the kind does not accept (Spark unpacks only .zip, .jar,
// .tar.gz, .tgz and .tar archives; pyfiles are .py, .zip, .egg or .jar).
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("empty artifact name")
	}
	if strings.HasPrefix(name, "/") || strings.ContainsAny(name, "\\\x00") {
		return fmt.Errorf("artifact name %q must be a relative slash-separated path", name)
	}
	kind, file, alias := SplitName(name)
	switch kind {
	case KindJars, KindPyFiles, KindArchives, KindFiles, KindCache, KindClasses:
	default:
		return fmt.Errorf("artifact name %q: unknown kind %q (want jars/, pyfiles/, archives/, files/, cache/ or classes/)", name, kind)
	}
	if file == "" {
		return fmt.Errorf("artifact name %q has no file name", name)
	}
	for _, seg := range strings.Split(file, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("artifact name %q: segment %q is not allowed", name, seg)
		}
	}
	if strings.Contains(file, "#") {
		if kind == KindArchives {
			return fmt.Errorf("archive name %q has a second '#'; Spark allows one, before the alias", name)
		}
		return fmt.Errorf("artifact name %q: '#' is only allowed in archive names, before the alias", name)
	}
	if kind == KindArchives && strings.Contains(name, "#") && (alias == "" || alias == "." || alias == ".." || strings.Contains(alias, "/")) {
		return fmt.Errorf("archive name %q: the alias after '#' must be a directory name", name)
	}
	lower := strings.ToLower(file)
	hasSuffix := func(sfx ...string) bool {
		for _, s := range sfx {
			if strings.HasSuffix(lower, s) {
				return true
			}
		}
		return false
	}
	switch kind {
	case KindArchives:
		if !hasSuffix(".zip", ".jar", ".tar.gz", ".tgz", ".tar") {
			return fmt.Errorf("archive name %q: Spark unpacks only .zip, .jar, .tar.gz, .tgz and .tar files", name)
		}
	case KindPyFiles:
		if !hasSuffix(".py", ".zip", ".egg", ".jar") {
			return fmt.Errorf("pyfile name %q: want a .py, .zip, .egg or .jar file", name)
		}
	case KindJars:
		if !hasSuffix(".jar") {
			return fmt.Errorf("jar name %q does not end in .jar", name)
		}
	}
	return nil
}

// NewArtifact describes the local file p under name, with its size and
// sha256.
func NewArtifact(name, p string) (Artifact, error) {
	if err := CheckName(name); err != nil {
		return Artifact{}, err
	}
	before, err := statID(p)
	if err != nil {
		return Artifact{}, fmt.Errorf("artifact %s: %w", name, err)
	}
	sum, size, err := artifact.HashFile(p)
	if err != nil {
		return Artifact{}, fmt.Errorf("artifact %s: %w", name, err)
	}
	a := Artifact{Name: name, Path: p, Size: size, SHA256: sum}
	// Remember the identity only when the file did not change while it was
	// hashed and is old enough that a change would move its ctime.
	if after, err := statID(p); err == nil && after == before && time.Since(time.Unix(0, before.ctime)) > 2*time.Second {
		a.hashedAs = before
	}
	return a, nil
}

// fileID is what tells a file apart from the same path with other bytes:
// only the kernel sets ctime, and any write moves it.
type fileID struct {
	size, mtime, ctime int64
	ino                uint64
}

func statID(p string) (fileID, error) {
	info, err := os.Stat(p)
	if err != nil {
		return fileID{}, err
	}
	return idOf(info), nil
}

func idOf(info os.FileInfo) fileID {
	id := fileID{size: info.Size(), mtime: info.ModTime().UnixNano()}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		id.ino = st.Ino
		id.ctime = st.Ctim.Nano()
	}
	return id
}

// statArtifact fills in a's size and checks it against the file.
func statArtifact(a *Artifact) error {
	info, err := os.Stat(a.Path)
	if err != nil {
		return fmt.Errorf("artifact %s: %w", a.Name, err)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("artifact %s: %s is not a regular file", a.Name, a.Path)
	}
	if a.Size != 0 && a.Size != info.Size() {
		return fmt.Errorf("artifact %s: %s has %d bytes, the artifact says %d (the file changed?)", a.Name, a.Path, info.Size(), a.Size)
	}
	a.Size = info.Size()
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
