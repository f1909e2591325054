package repodata

import (
	"encoding/binary"
	"testing"
)

// TestSpecial8 checks the eight-byte test against the byte table for every
// byte value in every position, among ordinary and special neighbours.
func TestSpecial8(t *testing.T) {
	t.Parallel()
	for _, fill := range []byte{'a', ' ', '~', 0x1f, '"', 0x80} {
		for pos := 0; pos < 8; pos++ {
			for c := 0; c < 256; c++ {
				var b [8]byte
				for i := range b {
					b[i] = fill
				}
				b[pos] = byte(c)
				want := false
				for _, x := range b {
					want = want || strClass[x] != 0
				}
				if got := special8(binary.LittleEndian.Uint64(b[:])); got != want {
					t.Fatalf("% x: special8 %v, want %v", b, got, want)
				}
			}
		}
	}
}
