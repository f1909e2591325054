package wheel

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
)

// RecordEntry is one line of a RECORD file (PEP 376 as amended by the
// recording-installed-packages spec): a path, an optional hash
// "algo=urlsafe-base64-without-padding" and an optional size.
type RecordEntry struct {
	Path string
	Hash string // "" when the line has none (RECORD itself, .pyc files)
	Size int64  // -1 when the line has none
}

// ParseRecord reads a RECORD file. Hashes must use sha256 or a stronger
// algorithm (the binary distribution format forbids md5 and sha1). Paths
// are not judged here: an installed RECORD names scripts as
// "../../../bin/x", while Install refuses anything but clean relative paths
// in a wheel's RECORD.
func ParseRecord(data []byte) ([]RecordEntry, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.ReuseRecord = false
	var out []RecordEntry
	seen := map[string]bool{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("RECORD: %w", err)
		}
		if len(rec) == 1 && rec[0] == "" {
			continue
		}
		if len(rec) != 3 {
			line, _ := r.FieldPos(0)
			return nil, fmt.Errorf("RECORD line %d: %d fields, want path,hash,size", line, len(rec))
		}
		e := RecordEntry{Path: rec[0], Hash: rec[1], Size: -1}
		if e.Path == "" || strings.ContainsRune(e.Path, 0) {
			return nil, fmt.Errorf("RECORD: path %q is empty or holds NUL", e.Path)
		}
		if seen[e.Path] {
			return nil, fmt.Errorf("RECORD: %s is listed twice", e.Path)
		}
		seen[e.Path] = true
		if e.Hash != "" {
			if _, _, err := splitHash(e.Hash); err != nil {
				return nil, fmt.Errorf("RECORD: %s: %w", e.Path, err)
			}
		}
		if rec[2] != "" {
			n, err := strconv.ParseInt(rec[2], 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("RECORD: %s: size %q is not a number", e.Path, rec[2])
			}
			e.Size = n
		}
		out = append(out, e)
	}
	return out, nil
}

// splitHash checks "algo=digest" and returns a hash for algo and the raw
// digest.
func splitHash(s string) (func() hash.Hash, []byte, error) {
	algo, digest, ok := strings.Cut(s, "=")
	if !ok {
		return nil, nil, fmt.Errorf("hash %q is not algo=digest", s)
	}
	var newHash func() hash.Hash
	switch algo {
	case "sha256":
		newHash = sha256.New
	case "sha384":
		newHash = sha512.New384
	case "sha512":
		newHash = sha512.New
	default:
		return nil, nil, fmt.Errorf("hash algorithm %q is not allowed (sha256, sha384 or sha512)", algo)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(digest, "="))
	if err != nil || len(raw) != newHash().Size() {
		return nil, nil, fmt.Errorf("hash %q: digest is not urlsafe base64 of a %s sum", s, algo)
	}
	return newHash, raw, nil
}

// encodeRecord renders entries as RECORD lines, in the given order.
func encodeRecord(entries []RecordEntry) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	for _, e := range entries {
		size := ""
		if e.Size >= 0 {
			size = strconv.FormatInt(e.Size, 10)
		}
		w.Write([]string{e.Path, e.Hash, size}) // writes to a buffer: cannot fail
	}
	w.Flush()
	return b.Bytes()
}

// checkPath refuses archive paths that are absolute, hold "..", empty
// elements, backslashes or NUL: a wheel must not write outside its scheme.
func checkPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("absolute path %q", p)
	case strings.ContainsAny(p, "\\\x00"):
		return fmt.Errorf("path %q holds a backslash or NUL", p)
	case len(p) >= 2 && p[1] == ':':
		return fmt.Errorf("path %q names a drive", p)
	}
	for _, el := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
		if el == ".." || el == "." || el == "" {
			return fmt.Errorf("path %q is not a clean relative path", p)
		}
	}
	return nil
}
