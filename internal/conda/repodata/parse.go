package repodata

import (
	"errors"
	"fmt"
	"sort"
)

// Top-level and info keys.
const (
	tUnknown = iota
	tInfo
	tPackages
	tPackagesConda
	tRemoved
	tRepodataVersion
)

var (
	topKeys = map[string]int{"info": tInfo, "packages": tPackages, "packages.conda": tPackagesConda,
		"removed": tRemoved, "repodata_version": tRepodataVersion}
	topFolded  = foldTable(topKeys)
	infoKeys   = map[string]int{"subdir": 1, "base_url": 2}
	infoFolded = foldTable(infoKeys)
)

func (t *strtab) lookup(key []byte, exact, folded map[string]int) int {
	if f, ok := exact[string(key)]; ok {
		return f
	}
	t.join = foldKey(t.join[:0], key)
	return folded[string(t.join)]
}

// entry is one member of "packages" or "packages.conda".
type entry struct {
	ks, ke int  // the key's contents in the document
	plain  bool // the key needs no unquoting
	val    int  // where the value starts
}

// recSet is one of the two record maps while it is read, and the errors of
// its records by file name: a later record of the same name clears one.
type recSet struct {
	name    string
	m       map[string]Record
	pending map[string]error
}

// decodeEntry decodes the record of e. Records that are not objects are
// errors, except null, which encoding/json read as an empty record.
func decodeEntry(d *decoder, e entry, r *Record) error {
	t := d.tab
	key := d.buf[e.ks:e.ke]
	if !e.plain {
		key = unquote(key, false, &t.fileKey)
	}
	d.pos = e.val
	var err error
	switch d.peek() {
	case '{':
		if err = d.record(r, key, 2); err == nil {
			return nil
		}
	case 'n':
		if err = d.literal("null"); err == nil {
			*r = Record{Depends: []string{}, FileName: string(key)}
			return nil
		}
	default:
		err = d.typeErr(2, "record", "an object")
	}
	*r = Record{FileName: string(key)}
	return err
}

// nextEntry reads one member of a record map at d.pos (its key's opening
// quote) into r. A semantic error is returned as recErr, after the value's
// syntax has been checked; bad syntax is returned as err.
func nextEntry(d *decoder, r *Record) (recErr, err error) {
	if d.peek() != '"' {
		return nil, d.errAt("looking for beginning of object key string")
	}
	s, e, plain, err := d.str()
	if err != nil {
		return nil, err
	}
	if err := d.expect(':', "after object key"); err != nil {
		return nil, err
	}
	d.ws()
	ent := entry{ks: s, ke: e, plain: plain, val: d.pos}
	if err := decodeEntry(d, ent, r); err != nil {
		if isSyntax(err) {
			return nil, err
		}
		// a later record of the same name may hide this error, but bad
		// syntax anywhere is fatal
		d.pos = ent.val
		if err := d.skip(2); err != nil {
			return nil, err
		}
		return err, nil
	}
	return nil, nil
}

// afterEntry consumes what follows a member: closed tells the map ended.
func afterEntry(d *decoder) (closed bool, err error) {
	switch d.peek() {
	case ',':
		d.pos++
		d.ws()
		return false, nil
	case '}':
		d.pos++
		return true, nil
	}
	return false, d.errAt("after object key:value pair")
}

func (s *recSet) add(r *Record, recErr error) {
	if s.m == nil {
		s.m = make(map[string]Record)
	}
	if recErr != nil {
		if s.pending == nil {
			s.pending = make(map[string]error)
		}
		s.pending[r.FileName] = recErr
	} else if s.pending != nil {
		delete(s.pending, r.FileName)
	}
	s.m[r.FileName] = *r
}

// records reads the object of one record map, decoding each record as it
// goes.
func records(d *decoder, set *recSet) error {
	switch d.peek() {
	case 'n':
		// null makes encoding/json drop the map read so far
		set.m, set.pending = nil, nil
		return d.literal("null")
	case '{':
	default:
		return d.typeErr(1, set.name, "an object")
	}
	if set.m == nil {
		// records take 400 to 600 bytes in real files; a hint of half
		// their likely number saves most of the map's regrowth without
		// oversizing it much when the rest of the file is the other map
		set.m = make(map[string]Record, (len(d.buf)-d.pos)/1024)
	}
	d.pos++
	if d.peek() == '}' {
		d.pos++
		return nil
	}
	for {
		var rec Record
		recErr, err := nextEntry(d, &rec)
		if err != nil {
			return err
		}
		set.add(&rec, recErr)
		if closed, err := afterEntry(d); err != nil || closed {
			return err
		}
	}
}

// parse reads a whole document on one goroutine. Splitting the records
// among goroutines (at guessed record starts, checked by the sequential
// reader) was tried: on two cores shared with other work it was slower than
// this, and it allocated a quarter more.
func parse(data []byte) (*Repodata, error) {
	d := &decoder{buf: data, tab: newStrtab(len(data))}
	var (
		subdir, baseURL string
		removed         []string
		version         []byte
		sets            = [2]recSet{{name: "packages"}, {name: "packages.conda"}}
	)
	switch d.peek() {
	case '{':
	case 'n':
		if err := d.literal("null"); err != nil {
			return nil, err
		}
		return &Repodata{Packages: map[string]Record{}, PackagesConda: map[string]Record{}}, nil
	default:
		if d.pos >= len(data) {
			return nil, d.errAt("")
		}
		return nil, d.typeErr(0, "repodata", "an object")
	}
	err := d.object(1, func(key []byte) error {
		switch d.tab.lookup(key, topKeys, topFolded) {
		case tInfo:
			switch d.peek() {
			case 'n':
				subdir, baseURL = "", ""
				return d.literal("null")
			case '{':
			default:
				return d.typeErr(1, "info", "an object")
			}
			return d.object(2, func(key []byte) error {
				f := d.tab.lookup(key, infoKeys, infoFolded)
				if f == 0 {
					return d.skip(2)
				}
				name := "info.subdir"
				if f == 2 {
					name = "info.base_url"
				}
				b, _, err := d.stringValue(2, name)
				if err != nil {
					return err
				}
				if f == 1 {
					subdir = string(b)
				} else {
					baseURL = string(b)
				}
				return nil
			})
		case tPackages:
			return records(d, &sets[0])
		case tPackagesConda:
			return records(d, &sets[1])
		case tRemoved:
			var err error
			removed, err = d.strList(removed, 2, "removed")
			return err
		case tRepodataVersion:
			b, ok, err := d.numberValue(1, "repodata_version")
			if ok {
				version = b
			}
			return err
		}
		return d.skip(1)
	})
	if err != nil {
		return nil, err
	}
	r := &Repodata{Info: Info{Subdir: subdir, BaseURL: baseURL}, Removed: removed}
	v, err := intOf(version)
	if err != nil {
		return nil, fmt.Errorf("repodata_version: %w", err)
	}
	r.RepodataVersion = int(v)
	if r.Packages, err = sets[0].build(subdir); err != nil {
		return nil, err
	}
	if r.PackagesConda, err = sets[1].build(subdir); err != nil {
		return nil, err
	}
	return r, nil
}

// build files the decoded records by file name. As with encoding/json, the
// last record of a name wins, and only the errors of winning records count.
func (s *recSet) build(subdir string) (map[string]Record, error) {
	if len(s.pending) > 0 {
		var errs []error
		for fn, err := range s.pending {
			errs = append(errs, fmt.Errorf("%s: %w", fn, err))
		}
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		return nil, fmt.Errorf("%s: %w", s.name, errors.Join(errs...))
	}
	m := s.m
	if m == nil {
		m = map[string]Record{}
	}
	if subdir != "" {
		for fn, r := range m {
			if r.Subdir == "" {
				r.Subdir = subdir
				m[fn] = r
			}
		}
	}
	return m, nil
}
