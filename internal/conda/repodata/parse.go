package repodata

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// parallelFrom is the document size from which records are decoded on
// several goroutines. Below it a single pass, which reads each record once
// instead of checking it first and decoding it later, is faster.
const parallelFrom = 256 << 10

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

// entryErr is the error of the record of entries[i].
type entryErr struct {
	i   int
	err error
}

// recSet is what one of the two record maps holds while it is read. In
// parallel mode: the members in document order and, once decoded, their
// records; sequentially: the map itself and the errors of its records.
type recSet struct {
	name    string
	entries []entry
	recs    []Record
	errs    []entryErr

	m       map[string]Record
	pending map[string]error // by file name; a later record of the name clears it
}

// decodeEntry decodes the record of e. Records that are not objects are
// errors, except null, which encoding/json read as an empty record.
func decodeEntry(d *decoder, e entry, r *Record) error {
	t := d.tab
	key := d.buf[e.ks:e.ke]
	if !e.plain {
		key = unquote(key, false, t.fileKey)
		t.fileKey = key[:0]
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

type parser struct {
	d        decoder
	parallel bool
}

// records reads the object of one record map. Sequentially it decodes each
// record as it goes; in parallel mode it only checks the syntax and notes
// where each record is, for decodeParallel.
func (p *parser) records(set *recSet) error {
	d := &p.d
	switch d.peek() {
	case 'n':
		// null makes encoding/json drop the map read so far
		set.entries, set.recs, set.errs = set.entries[:0], set.recs[:0], nil
		set.m, set.pending = nil, nil
		return d.literal("null")
	case '{':
	default:
		return d.typeErr(1, set.name, "an object")
	}
	d.pos++
	if d.peek() == '}' {
		d.pos++
		return nil
	}
	for {
		if d.peek() != '"' {
			return d.errAt("looking for beginning of object key string")
		}
		s, e, plain, err := d.str()
		if err != nil {
			return err
		}
		if err := d.expect(':', "after object key"); err != nil {
			return err
		}
		d.ws()
		ent := entry{ks: s, ke: e, plain: plain, val: d.pos}
		if p.parallel {
			if err := d.skip(2); err != nil {
				return err
			}
			set.entries = append(set.entries, ent)
		} else if err := p.decodeInto(set, ent); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return nil
		default:
			return d.errAt("after object key:value pair")
		}
	}
}

// parse reads data, decoding the records on workers goroutines when
// parallel is set.
// decodeInto decodes the record of ent straight into the map.
func (p *parser) decodeInto(set *recSet, ent entry) error {
	d := &p.d
	if set.m == nil {
		set.m = make(map[string]Record)
	}
	var rec Record
	err := decodeEntry(d, ent, &rec)
	switch {
	case err == nil:
		if set.pending != nil {
			delete(set.pending, rec.FileName)
		}
	case isSyntax(err):
		return err
	default:
		// a later record of the same name may hide this error, but bad
		// syntax anywhere is fatal
		if set.pending == nil {
			set.pending = make(map[string]error)
		}
		set.pending[rec.FileName] = err
		d.pos = ent.val
		if err := d.skip(2); err != nil {
			return err
		}
	}
	set.m[rec.FileName] = rec
	return nil
}

func parse(data []byte, workers int, parallel bool) (*Repodata, error) {
	p := parser{d: decoder{buf: data, tab: newStrtab(len(data))}, parallel: parallel && workers > 1}
	d := &p.d
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
			return p.records(&sets[0])
		case tPackagesConda:
			return p.records(&sets[1])
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
	if p.parallel {
		decodeParallel(data, sets[:], workers)
	}
	if r.Packages, err = sets[0].build(subdir); err != nil {
		return nil, err
	}
	if r.PackagesConda, err = sets[1].build(subdir); err != nil {
		return nil, err
	}
	return r, nil
}

// decodeParallel decodes the records of sets, whose syntax has been
// checked, on several goroutines. The work is cut into more pieces than
// workers, by bytes, so that a slow piece does not hold the others up.
func decodeParallel(data []byte, sets []recSet, workers int) {
	type piece struct {
		set    *recSet
		lo, hi int
		errs   []entryErr
	}
	var pieces []*piece
	for i := range sets {
		s := &sets[i]
		s.recs = make([]Record, len(s.entries))
		s.errs = nil
		const perPiece = 64 << 10
		lo := 0
		for j := range s.entries {
			if j+1 == len(s.entries) || s.entries[j+1].val-s.entries[lo].val >= perPiece {
				pieces = append(pieces, &piece{set: s, lo: lo, hi: j + 1})
				lo = j + 1
			}
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, len(pieces)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := decoder{buf: data, tab: newStrtab(len(data) / workers)}
			for {
				k := int(next.Add(1)) - 1
				if k >= len(pieces) {
					return
				}
				pc := pieces[k]
				for j := pc.lo; j < pc.hi; j++ {
					if err := decodeEntry(&d, pc.set.entries[j], &pc.set.recs[j]); err != nil {
						pc.errs = append(pc.errs, entryErr{j, err})
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, pc := range pieces {
		pc.set.errs = append(pc.set.errs, pc.errs...)
	}
}

// build files the decoded records by file name. As with encoding/json, the
// last record of a name wins, and only the errors of winning records count.
func (s *recSet) build(subdir string) (map[string]Record, error) {
	var errs []error
	m := s.m
	if m == nil {
		m = make(map[string]Record, len(s.recs))
		for i := range s.recs {
			m[s.recs[i].FileName] = s.recs[i]
		}
		if len(s.errs) > 0 {
			last := make(map[string]int, len(s.recs))
			for i := range s.recs {
				last[s.recs[i].FileName] = i
			}
			for _, e := range s.errs {
				if fn := s.recs[e.i].FileName; last[fn] == e.i {
					errs = append(errs, fmt.Errorf("%s: %w", fn, e.err))
				}
			}
		}
	}
	for fn, err := range s.pending {
		errs = append(errs, fmt.Errorf("%s: %w", fn, err))
	}
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		return nil, fmt.Errorf("%s: %w", s.name, errors.Join(errs...))
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
