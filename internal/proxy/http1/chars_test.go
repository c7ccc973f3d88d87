package http1

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// The word-at-a-time checks never miss a control byte, wherever it sits and whatever surrounds it.
func TestCTLBitsNoFalseNegatives(t *testing.T) {
	fillers := []byte{'a', 0x00, 0x1f, 0x20, 0x21, 0x7e, 0x7f, 0x80, 0xfe, 0xff}
	var w [8]byte
	for _, fill := range fillers {
		for p := 0; p < 7; p++ {
			for c1 := 0; c1 < 256; c1++ {
				for c2 := 0; c2 < 256; c2++ {
					for i := range w {
						w[i] = fill
					}
					w[p], w[p+1] = byte(c1), byte(c2)
					word := binary.LittleEndian.Uint64(w[:])
					ctl, ctlSP := false, false
					for _, c := range w {
						ctl = ctl || !valueChar[c] && c != '\t'
						ctlSP = ctlSP || !targetChar[c]
					}
					if ctl && ctlBits(word) == 0 {
						t.Fatalf("ctlBits missed a control byte in % x", w)
					}
					if ctlSP && ctlOrSPBits(word) == 0 {
						t.Fatalf("ctlOrSPBits missed a byte in % x", w)
					}
				}
			}
		}
	}
}

// scanValue and scanTarget agree with a plain table loop.
func TestScanAgainstTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte{'a', 'Z', ' ', '\t', '\r', '\n', 0x00, 0x01, 0x1f, 0x7f, 0x80, 0xff, '/', ':'}
	buf := make([]byte, 80)
	for range 200000 {
		n := rng.IntN(len(buf))
		for i := range n {
			if rng.IntN(8) == 0 {
				buf[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				buf[i] = byte(0x21 + rng.IntN(0x5e))
			}
		}
		b := buf[:n]
		start := 0
		if n > 0 {
			start = rng.IntN(n)
		}
		want := start
		for want < n && valueChar[b[want]] {
			want++
		}
		if got := scanValue(b, start); got != want {
			t.Fatalf("scanValue(%q, %d) = %d, want %d", b, start, got, want)
		}
		want = start
		for want < n && targetChar[b[want]] {
			want++
		}
		if got := scanTarget(b, start); got != want {
			t.Fatalf("scanTarget(%q, %d) = %d, want %d", b, start, got, want)
		}
	}
}
