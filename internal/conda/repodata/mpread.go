package repodata

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// mpReader reads MessagePack from a byte slice. Shards come from the
// network, so the reader is written to fail cleanly on anything: lengths are
// checked against the bytes actually left before allocating, and nesting is
// bounded so a crafted file cannot exhaust the stack.
type mpReader struct {
	b     []byte
	pos   int
	depth int
}

const mpMaxDepth = 64

var errTruncated = errors.New("msgpack: truncated")

func (r *mpReader) byte1() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, errTruncated
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

func (r *mpReader) take(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.pos {
		return nil, errTruncated
	}
	s := r.b[r.pos : r.pos+n]
	r.pos += n
	return s, nil
}

func (r *mpReader) uintN(n int) (uint64, error) {
	s, err := r.take(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(s[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(s)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(s)), nil
	default:
		return binary.BigEndian.Uint64(s), nil
	}
}

func (r *mpReader) peek() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, errTruncated
	}
	return r.b[r.pos], nil
}

// mpKind is the family of the next value.
type mpKind int

const (
	mpNil mpKind = iota
	mpBool
	mpInt
	mpFloat
	mpStr
	mpBin
	mpArray
	mpMap
	mpExt
)

func kindOf(c byte) mpKind {
	switch {
	case c <= 0x7f || c >= 0xe0:
		return mpInt
	case c <= 0x8f:
		return mpMap
	case c <= 0x9f:
		return mpArray
	case c <= 0xbf:
		return mpStr
	}
	switch c {
	case 0xc0:
		return mpNil
	case 0xc2, 0xc3:
		return mpBool
	case 0xc4, 0xc5, 0xc6:
		return mpBin
	case 0xca, 0xcb:
		return mpFloat
	case 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3:
		return mpInt
	case 0xd9, 0xda, 0xdb:
		return mpStr
	case 0xdc, 0xdd:
		return mpArray
	case 0xde, 0xdf:
		return mpMap
	}
	return mpExt // 0xc7-0xc9, 0xd4-0xd8; 0xc1 is rejected by skip
}

func (r *mpReader) nextKind() (mpKind, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	return kindOf(c), nil
}

// length reads the header of a str, bin, array or map.
func (r *mpReader) length(want mpKind) (int, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	if kindOf(c) != want {
		return 0, fmt.Errorf("msgpack: unexpected type 0x%02x", c)
	}
	var n uint64
	switch {
	case c >= 0x80 && c <= 0x8f:
		n = uint64(c & 0x0f)
	case c >= 0x90 && c <= 0x9f:
		n = uint64(c & 0x0f)
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c == 0xc4 || c == 0xd9:
		n, err = r.uintN(1)
	case c == 0xc5 || c == 0xda || c == 0xdc || c == 0xde:
		n, err = r.uintN(2)
	case c == 0xc6 || c == 0xdb || c == 0xdd || c == 0xdf:
		n, err = r.uintN(4)
	}
	if err != nil {
		return 0, err
	}
	// Every element takes at least one byte: a count beyond what is left is
	// a lie, caught here before anything is allocated for it.
	if n > uint64(len(r.b)-r.pos) {
		return 0, errTruncated
	}
	return int(n), nil
}

func (r *mpReader) mapLen() (int, error)   { return r.length(mpMap) }
func (r *mpReader) arrayLen() (int, error) { return r.length(mpArray) }

// rawString reads a str or bin value.
func (r *mpReader) rawString() ([]byte, error) {
	k, err := r.nextKind()
	if err != nil {
		return nil, err
	}
	if k != mpStr && k != mpBin {
		return nil, fmt.Errorf("msgpack: want a string, got type 0x%02x", r.b[r.pos])
	}
	n, err := r.length(k)
	if err != nil {
		return nil, err
	}
	return r.take(n)
}

func (r *mpReader) str() (string, error) {
	b, err := r.rawString()
	return string(b), err
}

// integer reads any integer, or a float with an integral value.
func (r *mpReader) integer() (int64, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	}
	switch c {
	case 0xcc, 0xcd, 0xce, 0xcf:
		u, err := r.uintN(1 << (c - 0xcc))
		if err != nil {
			return 0, err
		}
		if u > math.MaxInt64 {
			return 0, fmt.Errorf("msgpack: integer %d overflows", u)
		}
		return int64(u), nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		n := 1 << (c - 0xd0)
		u, err := r.uintN(n)
		if err != nil {
			return 0, err
		}
		switch n {
		case 1:
			return int64(int8(u)), nil
		case 2:
			return int64(int16(u)), nil
		case 4:
			return int64(int32(u)), nil
		}
		return int64(u), nil
	case 0xca:
		u, err := r.uintN(4)
		if err != nil {
			return 0, err
		}
		return floatToInt(float64(math.Float32frombits(uint32(u))))
	case 0xcb:
		u, err := r.uintN(8)
		if err != nil {
			return 0, err
		}
		return floatToInt(math.Float64frombits(u))
	}
	return 0, fmt.Errorf("msgpack: want a number, got type 0x%02x", c)
}

func floatToInt(f float64) (int64, error) {
	if math.IsNaN(f) || f > math.MaxInt64 || f < math.MinInt64 {
		return 0, fmt.Errorf("msgpack: number %v out of range", f)
	}
	return int64(f), nil
}

// scalar reads a string, number or nil as a string (versions are sometimes
// written as numbers).
func (r *mpReader) scalar() (string, error) {
	k, err := r.nextKind()
	if err != nil {
		return "", err
	}
	switch k {
	case mpNil:
		r.pos++
		return "", nil
	case mpInt, mpFloat:
		c := r.b[r.pos]
		if c == 0xca || c == 0xcb {
			r.pos++
			n := 4
			if c == 0xcb {
				n = 8
			}
			u, err := r.uintN(n)
			if err != nil {
				return "", err
			}
			f := math.Float64frombits(u)
			if n == 4 {
				f = float64(math.Float32frombits(uint32(u)))
			}
			return strconv.FormatFloat(f, 'g', -1, 64), nil
		}
		i, err := r.integer()
		return strconv.FormatInt(i, 10), err
	}
	return r.str()
}

// isNil consumes a nil and reports whether there was one.
func (r *mpReader) isNil() bool {
	if r.pos < len(r.b) && r.b[r.pos] == 0xc0 {
		r.pos++
		return true
	}
	return false
}

// strList reads a list of strings; nil gives an empty list and a single
// string is taken as a list of one.
func (r *mpReader) strList() ([]string, error) {
	if r.isNil() {
		return nil, nil
	}
	k, err := r.nextKind()
	if err != nil {
		return nil, err
	}
	if k == mpStr {
		s, err := r.str()
		return []string{s}, err
	}
	n, err := r.arrayLen()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, n)
	for range n {
		s, err := r.str()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// skip consumes one value of any type.
func (r *mpReader) skip() error {
	r.depth++
	defer func() { r.depth-- }()
	if r.depth > mpMaxDepth {
		return errors.New("msgpack: nested too deeply")
	}
	c, err := r.peek()
	if err != nil {
		return err
	}
	switch kindOf(c) {
	case mpNil, mpBool:
		if c == 0xc1 {
			return errors.New("msgpack: invalid type 0xc1")
		}
		r.pos++
		return nil
	case mpInt, mpFloat:
		if c <= 0x7f || c >= 0xe0 {
			r.pos++
			return nil
		}
		r.pos++
		n := 0
		switch c {
		case 0xcc, 0xd0:
			n = 1
		case 0xcd, 0xd1:
			n = 2
		case 0xce, 0xd2, 0xca:
			n = 4
		case 0xcf, 0xd3, 0xcb:
			n = 8
		}
		_, err := r.take(n)
		return err
	case mpStr, mpBin:
		_, err := r.rawString()
		return err
	case mpArray:
		n, err := r.arrayLen()
		if err != nil {
			return err
		}
		for range n {
			if err := r.skip(); err != nil {
				return err
			}
		}
		return nil
	case mpMap:
		n, err := r.mapLen()
		if err != nil {
			return err
		}
		for range 2 * n {
			if err := r.skip(); err != nil {
				return err
			}
		}
		return nil
	}
	// ext
	if c == 0xc1 {
		return errors.New("msgpack: invalid type 0xc1")
	}
	r.pos++
	var n uint64
	switch c {
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		n = 1 << (c - 0xd4)
	case 0xc7:
		n, err = r.uintN(1)
	case 0xc8:
		n, err = r.uintN(2)
	case 0xc9:
		n, err = r.uintN(4)
	}
	if err != nil {
		return err
	}
	if n > uint64(len(r.b)-r.pos) {
		return errTruncated
	}
	_, err = r.take(int(n) + 1) // the type byte, then the data
	return err
}
