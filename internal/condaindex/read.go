package condaindex

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/sparkenv/sparkenv/internal/conda/pkg"
	"github.com/sparkenv/sparkenv/internal/conda/repodata"
)

// Package is what an index knows of one package file.
type Package struct {
	// Record is the repodata record: info/index.json plus the file's name,
	// subdir, sha256, md5 and size.
	Record repodata.Record
	// Meta holds the channeldata.json flags read from info/ (run exports,
	// prefix placeholders, link scripts, activation scripts).
	Meta repodata.ChannelPackage
}

// bufs are the read buffers of hashing: large reads keep the hashers busy
// and the system calls few.
var bufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// Digests are the checksums of a file.
type Digests struct {
	SHA256 string
	MD5    string
	Size   int64
}

// HashFile returns the sha256, md5 and size of the file at path, read once.
func HashFile(path string) (Digests, error) {
	f, err := os.Open(path)
	if err != nil {
		return Digests{}, err
	}
	defer f.Close()
	return hashReader(path, f)
}

// splitAbove is the chunk size from which md5 and sha256 of one chunk run
// on two cores: md5 is the slower of the two and cannot be parallelized
// within itself, so a large package is hashed in about md5's time alone.
const splitAbove = 256 << 10

func hashReader(path string, r io.Reader) (Digests, error) {
	h256, h5 := sha256.New(), md5.New()
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	buf := *bp
	var n int64
	var wg sync.WaitGroup
	for {
		k, err := io.ReadFull(r, buf)
		if k > 0 {
			chunk := buf[:k]
			if k >= splitAbove {
				wg.Add(1)
				go func() {
					defer wg.Done()
					h5.Write(chunk)
				}()
				h256.Write(chunk)
				wg.Wait()
			} else {
				h256.Write(chunk)
				h5.Write(chunk)
			}
			n += int64(k)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return Digests{}, fmt.Errorf("read %s: %w", path, err)
		}
	}
	return Digests{SHA256: hex.EncodeToString(h256.Sum(nil)), MD5: hex.EncodeToString(h5.Sum(nil)), Size: n}, nil
}

// ReadPackage reads the package file at path: its info/ (only that part of
// the archive is decompressed) and its checksums. subdir is the folder the
// file sits in; info/index.json must agree with it and with the file name.
func ReadPackage(file, subdir string) (*Package, error) {
	d, err := HashFile(file)
	if err != nil {
		return nil, err
	}
	// The file was just read whole, so reading info/ comes from the page
	// cache: the disk sees one pass.
	info, err := pkg.ReadInfo(file)
	if err != nil {
		if !strings.Contains(err.Error(), file) {
			err = fmt.Errorf("%s: %w", file, err)
		}
		return nil, err
	}
	return newPackage(file, subdir, info, d)
}

func newPackage(file, subdir string, info *pkg.Info, d Digests) (*Package, error) {
	fn := filepath.Base(file)
	rec := info.Index
	stem := repodata.Stem(fn)
	if rec.Build == "" {
		return nil, fmt.Errorf("%s: info/index.json has no build string", file)
	}
	if stem != rec.DistName() {
		return nil, fmt.Errorf("%s: the file name does not match info/index.json (%s): conda clients find packages by name-version-build", file, rec.DistName())
	}
	if rec.Subdir != "" && rec.Subdir != subdir {
		return nil, fmt.Errorf("%s: info/index.json says subdir %q, but the file is in %q", file, rec.Subdir, subdir)
	}
	rec.Subdir = subdir
	rec.FileName = fn
	rec.URL, rec.Channel = "", ""
	rec.SHA256, rec.MD5, rec.Size = d.SHA256, d.MD5, d.Size
	if rec.Depends == nil {
		rec.Depends = []string{}
	}
	return &Package{Record: rec, Meta: metaOf(&rec, info)}, nil
}

// metaOf computes the channeldata flags of one package from its info/.
func metaOf(rec *repodata.Record, info *pkg.Info) repodata.ChannelPackage {
	m := repodata.ChannelPackage{License: rec.License, RunExports: map[string]json.RawMessage{}}
	for _, p := range info.Paths {
		if p.PrefixPlaceholder != "" {
			if p.FileMode == pkg.FileModeBinary {
				m.BinaryPrefix = true
			} else {
				m.TextPrefix = true
			}
		}
		switch {
		case strings.HasPrefix(p.Path, "etc/conda/activate.d/"):
			m.ActivateD = true
		case strings.HasPrefix(p.Path, "etc/conda/deactivate.d/"):
			m.DeactivateD = true
		}
		// paths.json paths are slash-separated whatever the host
		dir, base := path.Split(p.Path)
		dir = strings.TrimSuffix(dir, "/")
		if dir != "bin" && dir != "Scripts" {
			continue
		}
		for _, s := range []struct {
			suffix string
			flag   *bool
		}{{"-post-link", &m.PostLink}, {"-pre-link", &m.PreLink}, {"-pre-unlink", &m.PreUnlink}} {
			stem := strings.TrimSuffix(strings.TrimSuffix(base, ".sh"), ".bat")
			if stem == "."+rec.Name+s.suffix {
				*s.flag = true
			}
		}
	}
	if re := info.RunExports; re != nil {
		for k, v := range map[string][]string{
			"weak": re.Weak, "strong": re.Strong, "noarch": re.Noarch,
			"weak_constrains": re.WeakConstrains, "strong_constrains": re.StrongConstrains,
		} {
			if len(v) > 0 {
				b, _ := json.Marshal(v)
				m.RunExports[k] = b
			}
		}
	}
	return m
}
