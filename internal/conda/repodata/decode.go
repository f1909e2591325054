package repodata

import (
	"fmt"
	"strings"
)

// strtab turns decoded bytes into strings with few allocations. Strings
// that repeat across records (names, versions, licenses, depends entries)
// are interned; the strings unique to one record (build, hashes, file name)
// share one allocation per record; string lists are cut from a shared slab.
// A strtab belongs to one goroutine.
type strtab struct {
	m map[string]string // nil: no interning (a single record)

	keyScratch, fileKey, scratch, join []byte
	list                               []string
	slab                               []string

	// rec collects the unique strings of the record being read; uniq holds
	// where each lies in it (end < 0: unset).
	rec  []byte
	uniq [nUniq]struct{ off, end int }
}

// newStrtab sizes the intern table for a document of n bytes: a record
// of a few hundred bytes brings a handful of new strings at most.
func newStrtab(n int) *strtab {
	return &strtab{m: make(map[string]string, max(0, min(n/256, 8192)))}
}

// intern returns b as a string, shared with earlier equal strings.
func (t *strtab) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if t.m == nil {
		return string(b)
	}
	if s, ok := t.m[string(b)]; ok {
		return s
	}
	s := string(b)
	t.m[s] = s
	return s
}

// strs copies list into the slab; the result has no spare capacity, so an
// append by the caller never writes into a neighbour's list.
func (t *strtab) strs(list []string) []string {
	n := len(list)
	if n > cap(t.slab)-len(t.slab) {
		if t.m == nil || n > 64 {
			return append(make([]string, 0, n), list...)
		}
		t.slab = make([]string, 0, 1024)
	}
	l := len(t.slab)
	t.slab = append(t.slab, list...)
	return t.slab[l : l+n : l+n]
}

// setUniq records s as the value of unique field u of the current record.
func (t *strtab) setUniq(u int, s []byte) {
	t.uniq[u].off = len(t.rec)
	t.rec = append(t.rec, s...)
	t.uniq[u].end = len(t.rec)
}

// Unique string fields of a record.
const (
	uBuild = iota
	uMD5
	uSHA256
	uFn
	uURL
	uKey
	nUniq
)

// Record fields by JSON key.
const (
	fUnknown = iota
	fName
	fVersion
	fBuild
	fBuildNumber
	fDepends
	fConstrains
	fLicense
	fLicenseFamily
	fMD5
	fSHA256
	fSize
	fSubdir
	fTimestamp
	fTrackFeatures
	fFeatures
	fNoarch
	fPSP
	fFn
	fURL
	fChannel
)

var recordKeys = map[string]int{
	"name": fName, "version": fVersion, "build": fBuild, "build_number": fBuildNumber,
	"depends": fDepends, "constrains": fConstrains, "license": fLicense, "license_family": fLicenseFamily,
	"md5": fMD5, "sha256": fSHA256, "size": fSize, "subdir": fSubdir, "timestamp": fTimestamp,
	"track_features": fTrackFeatures, "features": fFeatures, "noarch": fNoarch,
	"python_site_packages_path": fPSP, "fn": fFn, "url": fURL, "channel": fChannel,
}

var recordFolded = foldTable(recordKeys)

// fieldNames names each field in errors.
var fieldNames = func() (n [fChannel + 1]string) {
	for k, f := range recordKeys {
		n[f] = k
	}
	return n
}()

func (t *strtab) recordField(key []byte) int {
	// a switch on the common keys is cheaper than hashing them
	switch string(key) {
	case "name":
		return fName
	case "version":
		return fVersion
	case "build":
		return fBuild
	case "build_number":
		return fBuildNumber
	case "depends":
		return fDepends
	case "md5":
		return fMD5
	case "sha256":
		return fSHA256
	case "size":
		return fSize
	case "subdir":
		return fSubdir
	case "timestamp":
		return fTimestamp
	case "license":
		return fLicense
	case "license_family":
		return fLicenseFamily
	case "constrains":
		return fConstrains
	}
	if f, ok := recordKeys[string(key)]; ok {
		return f
	}
	t.join = foldKey(t.join[:0], key)
	return recordFolded[string(t.join)]
}

// stringValue reads a string or null at d.pos: ok is false for null.
// The bytes are valid until the decoder's scratch is reused.
func (d *decoder) stringValue(depth int, field string) (b []byte, ok bool, err error) {
	switch d.peek() {
	case '"':
		s, e, plain, err := d.str()
		if err != nil {
			return nil, false, err
		}
		b = unquote(d.buf[s:e], plain, &d.tab.scratch)
		return b, true, nil
	case 'n':
		return nil, false, d.literal("null")
	}
	return nil, false, d.typeErr(depth, field, "a string")
}

// numberValue reads what encoding/json puts in a json.Number: a number, a
// string holding one, or null (ok false: the field keeps its value).
func (d *decoder) numberValue(depth int, field string) (b []byte, ok bool, err error) {
	switch c := d.peek(); {
	case c == '-' || '0' <= c && c <= '9':
		s, e, err := d.number()
		if err != nil {
			return nil, false, err
		}
		return d.buf[s:e], true, nil
	case c == '"':
		s, e, plain, err := d.str()
		if err != nil {
			return nil, false, err
		}
		var own []byte
		b := unquote(d.buf[s:e], plain, &own)
		if !validNumber(b) {
			return nil, false, fmt.Errorf("%s: invalid number literal %q", field, b)
		}
		return b, true, nil
	case c == 'n':
		return nil, false, d.literal("null")
	}
	return nil, false, d.typeErr(depth, field, "a number")
}

// strList reads a list of strings (or null, giving nil) into dst the way
// encoding/json fills an existing slice: elements past the new length keep
// their old values and null elements leave theirs. depth counts the list.
func (d *decoder) strList(dst []string, depth int, field string) ([]string, error) {
	switch d.peek() {
	case 'n':
		return nil, d.literal("null")
	case '[':
	default:
		return nil, d.typeErr(depth-1, field, "a list of strings")
	}
	if depth > maxDepth {
		return nil, d.errAt("exceeded max depth")
	}
	d.pos++
	if d.peek() == ']' {
		d.pos++
		return []string{}, nil
	}
	t := d.tab
	fresh := cap(dst) == 0
	list := t.list[:0]
	dst = dst[:0]
	for i := 0; ; i++ {
		var v string
		null := false
		switch d.peek() {
		case '"':
			s, e, plain, err := d.str()
			if err != nil {
				return nil, err
			}
			b := unquote(d.buf[s:e], plain, &t.scratch)
			v = t.intern(b)
		case 'n':
			if err := d.literal("null"); err != nil {
				return nil, err
			}
			null = true
		default:
			return nil, d.typeErr(depth, field, "a list of strings")
		}
		switch {
		case fresh:
			list = append(list, v)
		case i < cap(dst):
			dst = dst[:i+1]
			if !null {
				dst[i] = v
			}
		default:
			dst = append(dst, v)
		}
		switch d.peek() {
		case ',':
			d.pos++
		case ']':
			d.pos++
			if fresh {
				t.list = list[:0]
				return t.strs(list), nil
			}
			return dst, nil
		default:
			return nil, d.errAt("after array element")
		}
	}
}

// record reads the object at d.pos into r, which must be zero. key, when
// not nil, is the file name the record is filed under and becomes its
// FileName. depth is the number of containers around the object.
//
// Fields behave as the encoding/json struct of the old reader: version,
// track_features, features and noarch were raw JSON interpreted after the
// whole object was read (so only their last occurrence counts), the numbers
// were json.Number, license, license_family, md5, sha256, subdir and
// python_site_packages_path were *string (null clears them) and the other
// strings plain (null is ignored).
func (d *decoder) record(r *Record, key []byte, depth int) error {
	t := d.tab
	t.rec = t.rec[:0]
	for i := range t.uniq {
		t.uniq[i].end = -1
	}
	var version, trackFeatures, features, noarch []byte
	var buildNumber, size, timestamp []byte
	depth++
	if depth > maxDepth {
		return d.errAt("exceeded max depth")
	}
	d.pos++ // '{'
	if d.peek() == '}' {
		d.pos++
	} else {
		for {
			if d.peek() != '"' {
				return d.errAt("looking for beginning of object key string")
			}
			s, e, plain, err := d.str()
			if err != nil {
				return err
			}
			kb := d.buf[s:e]
			if !plain {
				kb = unquote(kb, false, &t.keyScratch)
			}
			f := t.recordField(kb)
			if err := d.expect(':', "after object key"); err != nil {
				return err
			}
			d.ws()
			switch f {
			case fName, fChannel:
				b, ok, err := d.stringValue(depth, fieldNames[f])
				if err != nil {
					return err
				}
				if ok {
					if f == fName {
						r.Name = t.intern(b)
					} else {
						r.Channel = t.intern(b)
					}
				}
			case fBuild, fFn, fURL:
				b, ok, err := d.stringValue(depth, fieldNames[f])
				if err != nil {
					return err
				}
				if ok {
					u := uBuild
					if f == fFn {
						u = uFn
					} else if f == fURL {
						u = uURL
					}
					t.setUniq(u, b)
				}
			case fLicense, fLicenseFamily, fSubdir, fPSP:
				b, _, err := d.stringValue(depth, fieldNames[f])
				if err != nil {
					return err
				}
				v := t.intern(b)
				switch f {
				case fLicense:
					r.License = v
				case fLicenseFamily:
					r.LicenseFamily = v
				case fSubdir:
					r.Subdir = v
				default:
					r.PythonSitePackagesPath = v
				}
			case fMD5, fSHA256:
				b, ok, err := d.stringValue(depth, fieldNames[f])
				if err != nil {
					return err
				}
				u := uMD5
				if f == fSHA256 {
					u = uSHA256
				}
				if ok {
					t.setUniq(u, b)
				} else {
					t.uniq[u].end = -1
				}
			case fBuildNumber, fSize, fTimestamp:
				b, ok, err := d.numberValue(depth, fieldNames[f])
				if err != nil {
					return err
				}
				if ok {
					switch f {
					case fBuildNumber:
						buildNumber = b
					case fSize:
						size = b
					default:
						timestamp = b
					}
				}
			case fVersion, fTrackFeatures, fFeatures, fNoarch:
				start := d.pos
				if err := d.skip(depth); err != nil {
					return err
				}
				raw := d.buf[start:d.pos]
				switch f {
				case fVersion:
					version = raw
				case fTrackFeatures:
					trackFeatures = raw
				case fFeatures:
					features = raw
				default:
					noarch = raw
				}
			case fDepends:
				if r.Depends, err = d.strList(r.Depends, depth+1, "depends"); err != nil {
					return err
				}
			case fConstrains:
				if r.Constrains, err = d.strList(r.Constrains, depth+1, "constrains"); err != nil {
					return err
				}
			default:
				if err := d.skip(depth); err != nil {
					return err
				}
			}
			switch d.peek() {
			case ',':
				d.pos++
				continue
			case '}':
				d.pos++
			default:
				return d.errAt("after object key:value pair")
			}
			break
		}
	}

	if key != nil {
		t.setUniq(uKey, key)
	}
	if len(t.rec) > 0 {
		all := string(t.rec)
		get := func(u int) string {
			if t.uniq[u].end < 0 {
				return ""
			}
			return all[t.uniq[u].off:t.uniq[u].end]
		}
		r.Build, r.MD5, r.SHA256, r.URL = get(uBuild), get(uMD5), get(uSHA256), get(uURL)
		r.FileName = get(uFn)
		if key != nil {
			r.FileName = get(uKey)
		}
	}
	var err error
	if r.Version, err = t.versionOf(version); err != nil {
		return fmt.Errorf("version: %w", err)
	}
	if r.BuildNumber, err = intOf(buildNumber); err != nil {
		return fmt.Errorf("build_number: %w", err)
	}
	if r.Size, err = intOf(size); err != nil {
		return fmt.Errorf("size: %w", err)
	}
	if r.Timestamp, err = intOf(timestamp); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	if r.Timestamp > 0 && r.Timestamp <= millisecondsAbove {
		r.Timestamp *= 1000
	}
	if r.TrackFeatures, err = t.featuresOf(trackFeatures); err != nil {
		return fmt.Errorf("track_features: %w", err)
	}
	if r.Features, err = t.featuresOf(features); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	if r.Noarch, err = t.noarchOf(noarch); err != nil {
		return fmt.Errorf("noarch: %w", err)
	}
	if r.Depends == nil {
		r.Depends = []string{}
	}
	return nil
}

// The helpers below read a raw value that has been checked already.

func isNull(raw []byte) bool { return len(raw) == 0 || raw[0] == 'n' }

func (t *strtab) quoted(raw []byte) string {
	d := decoder{buf: raw, tab: t}
	s, e, plain, _ := d.str()
	b := unquote(raw[s:e], plain, &t.scratch)
	return t.intern(b)
}

func (t *strtab) versionOf(raw []byte) (string, error) {
	switch {
	case isNull(raw):
		return "", nil
	case raw[0] == '"':
		return t.quoted(raw), nil
	case raw[0] == '-' || '0' <= raw[0] && raw[0] <= '9':
		return t.intern(raw), nil
	}
	return "", fmt.Errorf("want a string, got %s", clip(raw))
}

func (t *strtab) featuresOf(raw []byte) (string, error) {
	switch {
	case isNull(raw):
		return "", nil
	case raw[0] == '"':
		return strings.TrimSpace(t.quoted(raw)), nil
	case raw[0] == '[':
		d := decoder{buf: raw, pos: 1, tab: t}
		var joined []byte
		if d.peek() == ']' {
			return "", nil
		}
		for first := true; ; first = false {
			if !first {
				joined = append(joined, ' ')
			}
			switch d.peek() {
			case '"':
				s, e, plain, _ := d.str()
				joined = append(joined, unquote(raw[s:e], plain, &t.scratch)...)
			case 'n':
				d.pos += len("null")
			default:
				return "", fmt.Errorf("want a string or a list of strings, got %s", clip(raw))
			}
			if d.peek() == ']' {
				return t.intern(joined), nil
			}
			d.pos++ // ','
		}
	}
	return "", fmt.Errorf("want a string or a list of strings, got %s", clip(raw))
}

func (t *strtab) noarchOf(raw []byte) (string, error) {
	switch {
	case isNull(raw):
		return "", nil
	case raw[0] == '"':
		return t.quoted(raw), nil
	case raw[0] == 't':
		return "generic", nil // old-style `"noarch": true`
	case raw[0] == 'f':
		return "", nil
	}
	return "", fmt.Errorf("want a string or a boolean, got %s", clip(raw))
}
