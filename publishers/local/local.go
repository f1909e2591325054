// Package local implements the "local" publisher: it puts artifacts into a
// folder (a mounted share, a web server's document root, a directory that
// is later synced elsewhere), laid out by publishers.Layout.
//
//	publish "local" "share" {
//	  targets = [target.pyfiles.app]
//	  dir     = "/mnt/share/envs"
//	  prefix  = "prod"
//	}
//
// Files are copied, never hard-linked: a link would share its inode with
// the build store, so anything that later rewrote or chmod-ed a published
// file in place would silently corrupt the store (and the reverse). Each
// copy goes to a temporary file, is checked against the manifest's sha256
// while it is written, then renamed, so a reader of the folder sees either
// nothing or the whole, verified file.
//
// Order is what makes a half-finished publish harmless: every immutable
// file of every artifact first, then the mutable files of tree layouts,
// then the pointers (<target>/latest.json), so no pointer or index ever
// names a file that is not there yet. A content-addressed file already in
// place is skipped when its size and sha256 match; a different file under
// a content-addressed name is corruption and fails the publish, never
// overwritten. This package must never delete anything.
package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/sparkenv/sparkenv/internal/artifact"
	"github.com/sparkenv/sparkenv/internal/fsutil"
	"github.com/sparkenv/sparkenv/publishers"
)

// Kind is the first label of the publish block.
const Kind = "local"

// Config is the body of a local publish block, less `targets`.
type Config struct {
	// Dir is the folder to publish into, relative to the declaring file's
	// directory unless absolute. It is created when missing.
	Dir string `hcl:"dir"`
	// Prefix is a slash-separated folder inside Dir (e.g. "prod").
	Prefix string `hcl:"prefix,optional"`
}

// Publisher publishes into a local folder.
type Publisher struct {
	// beforeWrite, when set, runs before each file is written with its
	// destination key; an error aborts the publish there. Tests use it to
	// record the order of writes and to simulate a crash.
	beforeWrite func(key string) error
}

var _ publishers.Publisher = (*Publisher)(nil)

// New returns the local publisher.
func New() *Publisher { return &Publisher{} }

// Kind implements publishers.Publisher.
func (*Publisher) Kind() string { return Kind }

// Version implements publishers.Publisher.
func (*Publisher) Version() string { return "1" }

// NewConfig implements publishers.Publisher.
func (*Publisher) NewConfig() any { return &Config{} }

// root returns the absolute folder keys are relative to.
func (c *Config) root(baseDir string) (string, error) {
	if c.Dir == "" {
		return "", fmt.Errorf("publish local: dir is empty; set it to the folder to publish into")
	}
	dir := c.Dir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(baseDir, dir)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if c.Prefix == "" {
		return dir, nil
	}
	p := strings.Trim(c.Prefix, "/")
	if !artifact.ValidPath(p) {
		return "", fmt.Errorf("publish local: prefix %q must be a clean relative path inside dir", c.Prefix)
	}
	return filepath.Join(dir, filepath.FromSlash(p)), nil
}

// step is one file to put in place.
type step struct {
	key    string
	source string // empty for a pointer, whose bytes are in data
	data   []byte
	file   artifact.File
	// strict: the key is content-addressed, so a different file there is
	// corruption rather than an older version.
	strict bool
}

// Publish implements publishers.Publisher.
func (p *Publisher) Publish(ctx context.Context, req *publishers.Request) (*publishers.Receipt, error) {
	cfg, ok := req.Config.(*Config)
	if !ok || cfg == nil {
		return nil, fmt.Errorf("publish local: configuration is %T, want *local.Config", req.Config)
	}
	root, err := cfg.root(req.BaseDir)
	if err != nil {
		return nil, err
	}
	rc := &publishers.Receipt{Address: req.Address, Kind: Kind}
	var first, mutable, pointers []step
	// Two targets of different kinds may share a name, and so keys: the
	// same bytes under one key are fine, different bytes are refused.
	owner := map[string]struct{ target, sha string }{}
	claim := func(target, key, sha string) (bool, error) {
		if o, ok := owner[key]; ok {
			if o.sha != sha {
				return false, fmt.Errorf("publish local: %s and %s both publish %s with different content; rename one of the targets", o.target, target, key)
			}
			return false, nil
		}
		owner[key] = struct{ target, sha string }{target, sha}
		return true, nil
	}
	for _, a := range req.Artifacts {
		placements, ptr := publishers.Layout(a)
		item := publishers.ReceiptItem{Target: a.Address}
		for _, pl := range placements {
			if !artifact.ValidPath(pl.Key) {
				return nil, fmt.Errorf("publish local: %s: key %q is not a clean relative path", a.Address, pl.Key)
			}
			s := step{key: pl.Key, source: pl.Source, file: pl.File, strict: ptr != nil}
			fresh, err := claim(a.Address, pl.Key, pl.File.SHA256)
			if err != nil {
				return nil, err
			}
			switch {
			case !fresh:
			case pl.Last:
				mutable = append(mutable, s)
			default:
				first = append(first, s)
			}
			item.Files = append(item.Files, publishers.PublishedFile{
				Path: pl.File.Path, SHA256: pl.File.SHA256, Size: pl.File.Size,
				URLs: map[string]string{"file": fileURL(root, pl.Key)},
			})
		}
		if ptr != nil {
			data, err := pointerJSON(ptr)
			if err != nil {
				return nil, fmt.Errorf("publish local: pointer of %s: %w", a.Address, err)
			}
			sum := sha256.Sum256(data)
			key := publishers.PointerKey(a)
			f := artifact.File{Path: key, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
			fresh, err := claim(a.Address, key, f.SHA256)
			if err != nil {
				return nil, err
			}
			if fresh {
				pointers = append(pointers, step{key: key, data: data, file: f})
			}
			item.Pointer = &publishers.PublishedFile{
				Path: key, SHA256: f.SHA256, Size: f.Size,
				URLs: map[string]string{"file": fileURL(root, key)},
			}
		} else {
			item.Root = map[string]string{"file": fileURL(root, a.Name) + "/"}
		}
		rc.Items = append(rc.Items, item)
	}
	// All artifacts' immutable files, then mutable ones, then pointers:
	// a reader following any pointer or index finds its files.
	for _, phase := range [][]step{first, mutable, pointers} {
		for _, s := range phase {
			if err := ctx.Err(); err != nil {
				return nil, context.Cause(ctx)
			}
			copied, err := p.put(root, s, req.DryRun)
			if err != nil {
				return nil, fmt.Errorf("publish local %s: %w", req.Address, err)
			}
			verb := "skip"
			if copied {
				rc.Stats.Uploaded++
				rc.Stats.UploadedBytes += s.file.Size
				verb = "copy"
				if req.DryRun {
					verb = "would copy"
				}
			} else {
				rc.Stats.Skipped++
			}
			if req.Log != nil {
				fmt.Fprintf(req.Log, "%s %s\n", verb, filepath.Join(root, filepath.FromSlash(s.key)))
			}
		}
	}
	return rc, nil
}

// put places one file unless an identical one is there, and reports
// whether it wrote (or, in a dry run, would write).
func (p *Publisher) put(root string, s step, dryRun bool) (bool, error) {
	dst := filepath.Join(root, filepath.FromSlash(s.key))
	same, err := sameFile(dst, s.file)
	if err != nil {
		return false, err
	}
	if same {
		return false, nil
	}
	if s.strict {
		if _, err := os.Lstat(dst); err == nil {
			return false, fmt.Errorf("%s exists with content other than sha256 %s; a content-addressed file never changes, so the folder is corrupt: inspect and remove it by hand", dst, s.file.SHA256)
		}
	}
	if dryRun {
		return true, nil
	}
	if p.beforeWrite != nil {
		if err := p.beforeWrite(s.key); err != nil {
			return false, err
		}
	}
	if s.source == "" {
		return true, fsutil.WriteFile(dst, s.data, 0o644)
	}
	return true, copyVerified(s.source, dst, s.file)
}

// sameFile reports whether dst is a regular file with f's size and digest.
func sameFile(dst string, f artifact.File) (bool, error) {
	info, err := os.Lstat(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !info.Mode().IsRegular() {
		return false, fmt.Errorf("%s exists and is not a regular file (%s)", dst, info.Mode().Type())
	}
	if info.Size() != f.Size {
		return false, nil
	}
	sum, _, err := artifact.HashFile(dst)
	if err != nil {
		return false, err
	}
	return sum == f.SHA256, nil
}

// copyVerified copies src to dst atomically, failing before the rename
// when the bytes read do not have f's digest (a store file changed or
// damaged since its manifest was made).
func copyVerified(src, dst string, f artifact.File) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	perm := os.FileMode(0o644)
	if f.Executable {
		perm = 0o755
	}
	return fsutil.WriteFileFrom(dst, perm, func(w io.Writer) error {
		h := sha256.New()
		n, err := io.CopyBuffer(io.MultiWriter(w, h), in, make([]byte, 1<<20))
		if err != nil {
			return err
		}
		return checkDigest(src, h, n, f)
	})
}

func checkDigest(src string, h hash.Hash, n int64, f artifact.File) error {
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 || n != f.Size {
		return fmt.Errorf("%s has sha256 %s and %d bytes, but its manifest says %s and %d bytes", src, got, n, f.SHA256, f.Size)
	}
	return nil
}

// pointerJSON encodes ptr canonically: object keys sorted, two-space
// indent, trailing newline, so equal pointers are equal bytes.
func pointerJSON(ptr *publishers.Pointer) ([]byte, error) {
	raw, err := json.Marshal(ptr)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func fileURL(root, key string) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(root) + "/" + path.Clean(key)}
	return u.String()
}
