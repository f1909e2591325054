package connecttest

import (
	"archive/tar"
	"archive/zip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// materialize lays an added artifact out as a session's executors see it,
// in their working directory for the session: archives unpacked into the
// alias (or the file name), files and pyfiles fetched under their file name
// and made executable.
func materialize(sessionDir, canonical, alias, file string) error {
	kind, _, _ := strings.Cut(canonical, "/")
	base := path.Base(canonical)
	switch kind {
	case "archives":
		if alias == "" {
			alias = base
		}
		return unpack(file, filepath.Join(sessionDir, alias))
	case "files", "pyfiles":
		dst := filepath.Join(sessionDir, base)
		if err := os.Link(file, dst); err != nil {
			return err
		}
		return os.Chmod(dst, 0o755)
	}
	return nil
}

// unpack extracts an archive the way Spark's Utils.unpack does on executors
// (suffixes matched case-insensitively): .tar.gz and .tgz through the system
// tar (modes and symbolic links survive), .zip and .jar with a Java-style
// unzip, .tar with a Java-style untar that drops file modes; anything else
// is copied as it is.
func unpack(file, dest string) error {
	lower := strings.ToLower(file)
	switch {
	case strings.HasSuffix(lower, ".tar.gz"), strings.HasSuffix(lower, ".tgz"):
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return err
		}
		out, err := exec.Command("tar", "-xzf", file, "-C", dest).CombinedOutput()
		if err != nil {
			return fmt.Errorf("tar -xzf %s: %v: %s", file, err, out)
		}
		return nil
	case strings.HasSuffix(lower, ".zip"), strings.HasSuffix(lower, ".jar"):
		return unzip(file, dest)
	case strings.HasSuffix(lower, ".tar"):
		return untar(file, dest)
	default:
		in, err := os.Open(file)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(dest)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	}
}

// inside joins name to dest, refusing names that leave dest (as Hadoop's
// unzip and untar do).
func inside(dest, name string) (string, error) {
	clean := path.Clean(strings.ReplaceAll(name, "\\", "/"))
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("entry %q leaves %s", name, dest)
	}
	p := filepath.Join(dest, filepath.FromSlash(clean))
	// An earlier entry may have made a parent a symbolic link; writing
	// through it could land anywhere.
	for d := filepath.Dir(p); d != dest && strings.HasPrefix(d, dest); d = filepath.Dir(d) {
		if info, err := os.Lstat(d); err == nil && info.Mode()&os.ModeSymlink != 0 {
			return "", fmt.Errorf("entry %q goes through the symbolic link %s", name, d)
		}
	}
	return p, nil
}

func unzip(file, dest string) error {
	r, err := zip.OpenReader(file)
	if err != nil {
		return err
	}
	defer r.Close()
	for _, f := range r.File {
		p, err := inside(dest, f.Name)
		if err != nil {
			return err
		}
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		// Java's unzip writes a symbolic link entry as a file holding the
		// target; keep the exec bit, as recent Hadoop does.
		mode := os.FileMode(0o644)
		if f.Mode()&0o111 != 0 {
			mode = 0o755
		}
		if err := writeEntry(p, mode, f.Open); err != nil {
			return err
		}
	}
	return nil
}

func untar(file, dest string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p, err := inside(dest, h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := writeEntry(p, 0o644, func() (io.ReadCloser, error) { return io.NopCloser(tr), nil }); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(h.Linkname, p); err != nil {
				return err
			}
		}
	}
}

func writeEntry(p string, mode os.FileMode, open func() (io.ReadCloser, error)) error {
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, rc); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
