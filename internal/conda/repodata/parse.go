package repodata

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
)

// pieceMin is the least a goroutine is given to decode: below it starting
// one costs more than it saves.
const pieceMin = 128 << 10

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

type parser struct {
	d     decoder
	specs []*spec // by start, ascending
	next  int     // the first spec not yet adopted or dropped
	// adopted counts the specs whose work was used
	adopted int
}

// records reads the object of one record map, decoding each record as it
// goes, and taking over the work of a speculative decoder when it reaches
// the member where that one started.
func (p *parser) records(set *recSet) error {
	d := &p.d
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
		if len(p.specs) > p.next {
			closed, err := p.adopt(set)
			if err != nil || closed {
				return err
			}
		}
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

// adopt takes over the speculative decoders that started where the map's
// next member starts, and drops those whose start it has passed: these
// started in the wrong place.
func (p *parser) adopt(set *recSet) (closed bool, err error) {
	d := &p.d
	for p.next < len(p.specs) && p.specs[p.next].start <= d.pos {
		s := p.specs[p.next]
		p.next++
		if s.start < d.pos {
			s.cancel.Store(true)
			continue
		}
		<-s.done
		p.adopted++
		if s.err != nil {
			return false, s.err
		}
		k, i := 0, 0
		for _, block := range s.recs {
			for j := range block {
				var recErr error
				if k < len(s.errs) && s.errs[k].i == i {
					recErr = s.errs[k].err
					k++
				}
				set.add(&block[j], recErr)
				i++
			}
		}
		s.recs = nil
		d.pos = s.end
		if !s.reached {
			return true, nil // it read to the end of the map
		}
	}
	return false, nil
}

// spec is a speculative decoder: it decodes the records of a map from a
// guessed member start onwards, until the map ends or the next spec's start.
// Its work counts only if the parser, reading from the beginning, arrives
// at a member starting exactly there; strings that merely look like
// members then make the guess miss, never a wrong result.
type spec struct {
	start, stop int        // stop < 0: none
	size        int        // about how much it reads
	recs        [][]Record // in blocks, which need no copying to grow
	errs        []entryErr
	end         int  // where it stopped: after the map's '}', or at stop
	reached     bool // it stopped at stop
	err         error
	cancel      atomic.Bool
	done        chan struct{}
}

// entryErr is the error of the i-th record of a spec.
type entryErr struct {
	i   int
	err error
}

func (s *spec) run(data []byte) {
	defer close(s.done)
	d := decoder{buf: data, pos: s.start, tab: newStrtab(s.size)}
	var block []Record // the last of s.recs
	n := 0             // records read
	for !s.cancel.Load() {
		if d.pos == s.stop {
			s.end, s.reached = d.pos, true
			return
		}
		if len(s.recs) == 0 || len(block) == cap(block) {
			block = make([]Record, 0, 256)
			s.recs = append(s.recs, nil)
		}
		block = append(block, Record{})
		s.recs[len(s.recs)-1] = block
		recErr, err := nextEntry(&d, &block[len(block)-1])
		if err != nil {
			s.err = err
			return
		}
		if recErr != nil {
			s.errs = append(s.errs, entryErr{n, recErr})
		}
		n++
		closed, err := afterEntry(&d)
		if err != nil {
			s.err = err
			return
		}
		if closed {
			s.end = d.pos
			return
		}
	}
}

// guessMember returns the first position at or after from that looks like
// the start of a member of a record map, `}, "name": {` with the quote
// returned, or -1.
func guessMember(data []byte, from, limit int) int {
	limit = min(limit, len(data))
	for i := from; i < limit; i++ {
		i = indexByteFrom(data, '}', i, limit)
		if i < 0 {
			return -1
		}
		j := skipWS(data, i+1)
		if j >= len(data) || data[j] != ',' {
			continue
		}
		q := skipWS(data, j+1)
		if q >= len(data) || data[q] != '"' {
			continue
		}
		k := q + 1
		for k < len(data) && data[k] != '"' && data[k] != '\\' && data[k] >= ' ' {
			k++
		}
		if k >= len(data) || data[k] != '"' {
			continue
		}
		k = skipWS(data, k+1)
		if k >= len(data) || data[k] != ':' {
			continue
		}
		k = skipWS(data, k+1)
		if k < len(data) && data[k] == '{' {
			return q
		}
	}
	return -1
}

func indexByteFrom(b []byte, c byte, from, limit int) int {
	if i := bytes.IndexByte(b[from:limit], c); i >= 0 {
		return from + i
	}
	return -1
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// speculate starts up to workers-1 speculative decoders at guessed member
// starts spread evenly over data, each to read at least piece bytes.
func (p *parser) speculate(data []byte, workers, piece int) {
	n := min(workers, len(data)/piece)
	var starts []int
	for i := 1; i < n; i++ {
		from := i * len(data) / n
		if len(starts) > 0 {
			from = max(from, starts[len(starts)-1]+1)
		}
		if q := guessMember(data, from, from+len(data)/n); q >= 0 {
			starts = append(starts, q)
		}
	}
	for i, start := range starts {
		s := &spec{start: start, stop: -1, size: len(data) / n, done: make(chan struct{})}
		if i+1 < len(starts) {
			s.stop = starts[i+1]
		}
		p.specs = append(p.specs, s)
		go s.run(data)
	}
}

// finish stops the speculative decoders that were never adopted and waits
// for all of them, so that none outlives the parse.
func (p *parser) finish() {
	for _, s := range p.specs[p.next:] {
		s.cancel.Store(true)
	}
	for _, s := range p.specs {
		<-s.done
	}
}

// parse reads data, decoding the records on up to workers goroutines,
// each given piece bytes at least.
func parse(data []byte, workers, piece int) (*Repodata, error) {
	p := parser{d: decoder{buf: data, tab: newStrtab(len(data))}}
	if workers > 1 && piece > 0 && len(data) >= 2*piece {
		p.speculate(data, workers, piece)
	}
	return p.parse()
}

func (p *parser) parse() (*Repodata, error) {
	defer p.finish()
	d := &p.d
	data := d.buf
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
