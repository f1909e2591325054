package repodata

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The reader of repodata.json is a hand-written JSON decoder specialised to
// the shape of repodata. It must accept and reject exactly what the
// encoding/json based reader it replaced did (the differential fuzz test
// holds it to that), so it copies encoding/json's observable rules:
// documents nested deeper than maxDepth are refused, keys match struct
// fields exactly first and then case-insensitively with Unicode simple
// folding, strings with invalid UTF-8 or lone surrogates read as U+FFFD,
// null leaves a plain string untouched but clears a slice or pointer, and
// bytes after the top-level value are ignored (json.Decoder stops there).

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

var errEOF = errors.New("unexpected end of JSON input")

// syntaxError is malformed JSON: fatal wherever it occurs, unlike a type
// error inside a record, which a later record of the same file name hides.
type syntaxError struct {
	msg string
	off int
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at offset %d", e.msg, e.off) }

func isSyntax(err error) bool {
	var se *syntaxError
	return errors.As(err, &se)
}

// decoder reads JSON from buf; pos is the next byte to read.
type decoder struct {
	buf []byte
	pos int
	tab *strtab
}

func (d *decoder) errAt(msg string) error {
	if d.pos >= len(d.buf) {
		return &syntaxError{msg: errEOF.Error(), off: d.pos}
	}
	return &syntaxError{msg: fmt.Sprintf("invalid character %q %s", d.buf[d.pos], msg), off: d.pos}
}

func (d *decoder) ws() {
	for d.pos < len(d.buf) {
		c := d.buf[d.pos]
		if c > ' ' || c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return
		}
		d.pos++
	}
}

// peek skips white space and returns the next byte, or 0 at the end.
func (d *decoder) peek() byte {
	d.ws()
	if d.pos >= len(d.buf) {
		return 0
	}
	return d.buf[d.pos]
}

// expect consumes c after optional white space.
func (d *decoder) expect(c byte, what string) error {
	if d.peek() != c || d.pos >= len(d.buf) {
		return d.errAt(what)
	}
	d.pos++
	return nil
}

// strClass marks bytes that end the fast path of a string scan: the quote,
// the backslash, control characters and non-ASCII bytes.
var strClass = func() (t [256]byte) {
	for c := 0; c < 0x20; c++ {
		t[c] = 1
	}
	t['"'], t['\\'] = 1, 1
	for c := 0x80; c < 0x100; c++ {
		t[c] = 1
	}
	return t
}()

// str scans the string at d.pos (which holds '"') and returns the bounds of
// its contents and whether they are usable as they are: no escapes and no
// non-ASCII byte (which may be invalid UTF-8 and then needs replacing).
func (d *decoder) str() (start, end int, plain bool, err error) {
	b := d.buf
	i := d.pos + 1
	start = i
	plain = true
	for {
		// eight bytes at a time while none of them is special
		for i+8 <= len(b) && !special8(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for i < len(b) && strClass[b[i]] == 0 {
			i++
		}
		if i >= len(b) {
			d.pos = i
			return 0, 0, false, d.errAt("")
		}
		switch c := b[i]; {
		case c == '"':
			d.pos = i + 1
			return start, i, plain, nil
		case c == '\\':
			plain = false
			if i+1 >= len(b) {
				d.pos = i + 1
				return 0, 0, false, d.errAt("")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := 2; k < 6; k++ {
					if i+k >= len(b) {
						d.pos = i + k
						return 0, 0, false, d.errAt("")
					}
					if !isHexDigit(b[i+k]) {
						d.pos = i + k
						return 0, 0, false, d.errAt("in \\u hexadecimal character escape")
					}
				}
				i += 6
			default:
				d.pos = i + 1
				return 0, 0, false, d.errAt("in string escape code")
			}
		case c < 0x20:
			d.pos = i
			return 0, 0, false, d.errAt("in string literal")
		default: // non-ASCII
			plain = false
			i++
		}
	}
}

// special8 says whether any of the eight bytes in x is one that strClass
// marks (a quote, a backslash, a control character or a non-ASCII byte).
func special8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	hasZero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	return (x&highs)|hasZero(x&0xE0E0E0E0E0E0E0E0)|hasZero(x^('"'*ones))|hasZero(x^('\\'*ones)) != 0
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unquote returns the contents of a scanned string: s itself when it needs
// no decoding, else its decoding in *scratch, valid until *scratch is next
// used. The input document is never written to.
func unquote(s []byte, plain bool, scratch *[]byte) []byte {
	if plain {
		return s
	}
	if !hasByte(s, '\\') && utf8.Valid(s) {
		return s
	}
	out := (*scratch)[:0]
	defer func() { *scratch = out[:0] }()
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch s[i+1] {
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r := hex4(s[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						r2 = hex4(s[i+2:])
					}
					if pair := utf16.DecodeRune(r, r2); pair != unicode.ReplacementChar {
						i += 6
						out = utf8.AppendRune(out, pair)
						continue
					}
					r = unicode.ReplacementChar
				}
				out = utf8.AppendRune(out, r)
				continue
			default: // '"', '\\', '/'
				out = append(out, s[i+1])
			}
			i += 2
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			out = utf8.AppendRune(out, r)
			i += n
		}
	}
	return out
}

func hasByte(s []byte, c byte) bool {
	for _, x := range s {
		if x == c {
			return true
		}
	}
	return false
}

func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// number scans a number literal at d.pos.
func (d *decoder) number() (start, end int, err error) {
	b := d.buf
	i := d.pos
	start = i
	if i < len(b) && b[i] == '-' {
		i++
	}
	fail := func(j int, what string) (int, int, error) {
		d.pos = j
		return 0, 0, d.errAt(what)
	}
	switch {
	case i >= len(b):
		return fail(i, "")
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i++
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return fail(i, "in numeric literal")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return fail(i, "after decimal point in numeric literal")
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return fail(i, "in exponent of numeric literal")
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	d.pos = i
	return start, i, nil
}

// validNumber says whether s is a JSON number, as a json.Number read from a
// string must be.
func validNumber(s []byte) bool {
	d := decoder{buf: s}
	_, end, err := d.number()
	return err == nil && end == len(s)
}

// literal consumes true, false or null.
func (d *decoder) literal(word string) error {
	for k := 0; k < len(word); k++ {
		if d.pos >= len(d.buf) || d.buf[d.pos] != word[k] {
			return d.errAt("in literal " + word)
		}
		d.pos++
	}
	return nil
}

// skip consumes one value of any kind, checking its syntax; depth is the
// number of arrays and objects it sits in.
func (d *decoder) skip(depth int) error {
	switch d.peek() {
	case '{':
		if depth++; depth > maxDepth {
			return d.errAt("exceeded max depth")
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
			if _, _, _, err := d.str(); err != nil {
				return err
			}
			if err := d.expect(':', "after object key"); err != nil {
				return err
			}
			if err := d.skip(depth); err != nil {
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
	case '[':
		if depth++; depth > maxDepth {
			return d.errAt("exceeded max depth")
		}
		d.pos++
		if d.peek() == ']' {
			d.pos++
			return nil
		}
		for {
			if err := d.skip(depth); err != nil {
				return err
			}
			switch d.peek() {
			case ',':
				d.pos++
			case ']':
				d.pos++
				return nil
			default:
				return d.errAt("after array element")
			}
		}
	case '"':
		_, _, _, err := d.str()
		return err
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	default:
		_, _, err := d.number()
		return err
	}
}

// object walks the members of the object at d.pos, calling member with the
// decoded key; member must consume the value. depth counts the object.
func (d *decoder) object(depth int, member func(key []byte) error) error {
	if depth > maxDepth {
		return d.errAt("exceeded max depth")
	}
	d.pos++ // '{'
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
		key := unquote(d.buf[s:e], plain, &d.tab.keyScratch)
		if err := d.expect(':', "after object key"); err != nil {
			return err
		}
		d.ws()
		if err := member(key); err != nil {
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

// typeErr reports a value of the wrong JSON type for a field, after
// checking the value's syntax so that malformed JSON still reads as such.
func (d *decoder) typeErr(depth int, field, want string) error {
	start := d.pos
	if err := d.skip(depth); err != nil {
		return err
	}
	return fmt.Errorf("%s: want %s, got %s", field, want, clip(d.buf[start:d.pos]))
}

func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// foldKey folds a key the way encoding/json matches field names
// case-insensitively: ASCII to upper case, other runes to the smallest
// member of their simple case-folding orbit (so "ſ" matches "s").
func foldKey(dst, key []byte) []byte {
	for i := 0; i < len(key); {
		c := key[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(key[i:])
		for {
			f := unicode.SimpleFold(r)
			if f <= r {
				r = f
				break
			}
			r = f
		}
		dst = utf8.AppendRune(dst, r)
		i += n
	}
	return dst
}

func foldTable(names map[string]int) map[string]int {
	out := make(map[string]int, len(names))
	for k, v := range names {
		out[string(foldKey(nil, []byte(k)))] = v
	}
	return out
}

// intOf reads a json.Number the way the old reader did: as an integer, or
// failing that as a float truncated toward zero.
func intOf(n []byte) (int64, error) {
	if len(n) == 0 {
		return 0, nil
	}
	if len(n) <= 18 {
		neg := n[0] == '-'
		digits := n
		if neg {
			digits = n[1:]
		}
		if len(digits) > 0 {
			var v int64
			ok := true
			for _, c := range digits {
				if c < '0' || c > '9' {
					ok = false
					break
				}
				v = v*10 + int64(c-'0')
			}
			if ok {
				if neg {
					v = -v
				}
				return v, nil
			}
		}
	}
	s := string(n)
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	return int64(f), nil
}
