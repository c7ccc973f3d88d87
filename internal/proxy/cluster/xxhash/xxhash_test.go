package xxhash

import (
	"strconv"
	"strings"
	"testing"
)

func TestSum64(t *testing.T) {
	tests := []struct {
		desc string
		in   string
		seed uint64
		want uint64
	}{
		{desc: "empty", in: "", want: 0xef46db3751d8e999},
		{desc: "one byte", in: "a", want: 0xd24ec4f1a98c6e5b},
		{desc: "three bytes", in: "abc", want: 0x44bc2cf5ad770999},
		{desc: "long input uses the stripe loop", in: "Nobody inspects the spammish repetition", want: 0xfbcea83c8a378bf1},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := Sum64StringSeed(tt.in, tt.seed); got != tt.want {
				t.Errorf("Sum64StringSeed(%q) = %#x, want %#x", tt.in, got, tt.want)
			}
			if got := Sum64([]byte(tt.in)); got != tt.want {
				t.Errorf("Sum64(%q) = %#x, want %#x", tt.in, got, tt.want)
			}
		})
	}
}

func TestSeedChangesHash(t *testing.T) {
	if Sum64StringSeed("10.0.0.1:80", 0) == Sum64StringSeed("10.0.0.1:80", 1) {
		t.Fatal("seeds 0 and 1 gave the same hash")
	}
}

func TestAllLengthsAgree(t *testing.T) {
	// The string and byte forms must agree for every tail length of every stripe count.
	s := strings.Repeat("0123456789abcdef", 8)
	for n := 0; n <= len(s); n++ {
		if Sum64String(s[:n]) != Sum64([]byte(s[:n])) {
			t.Fatalf("length %d: string and byte forms differ", n)
		}
	}
}

func TestSum64StringAllocs(t *testing.T) {
	s := strings.Repeat("x", 100)
	if n := testing.AllocsPerRun(100, func() { _ = Sum64String(s) }); n != 0 {
		t.Fatalf("Sum64String allocates %v times", n)
	}
}

func BenchmarkSum64String(b *testing.B) {
	for _, n := range []int{8, 32, 128} {
		s := strings.Repeat("x", n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				_ = Sum64String(s)
			}
		})
	}
}
