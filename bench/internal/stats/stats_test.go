package stats

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

func TestBucketsRoundTrip(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 255, 511, 512, 513, 1023, 1024, 1 << 20, 123456789, 1 << 39} {
		i := bucketOf(v)
		if i < prev {
			t.Fatalf("bucketOf not monotonic at %d", v)
		}
		prev = i
		hi := highestOf(i)
		if hi < v {
			t.Fatalf("highestOf(bucketOf(%d)) = %d, below the value", v, hi)
		}
		if i > 0 && highestOf(i-1) >= v {
			t.Fatalf("value %d also fits the previous bucket (highest %d)", v, highestOf(i-1))
		}
		if rel := float64(hi-v) / float64(max(v, 1)); rel > 1.0/subCount {
			t.Fatalf("value %d reported as %d: relative error %.4f", v, hi, rel)
		}
	}
}

func TestPercentileAgainstExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	h := NewHistogram()
	vals := make([]uint64, 100000)
	for i := range vals {
		v := uint64(50_000 + r.ExpFloat64()*80_000) // ns: 50us plus an exponential tail
		vals[i] = v
		h.Record(v)
	}
	sort.Slice(vals, func(a, b int) bool { return vals[a] < vals[b] })
	for _, p := range []float64{50, 90, 99, 99.9, 100} {
		rank := int(math.Ceil(p/100*float64(len(vals)))) - 1
		exact := vals[rank]
		got := h.Percentile(p)
		if got < exact || float64(got-exact) > float64(exact)/subCount+1 {
			t.Errorf("p%v = %d, exact %d", p, got, exact)
		}
	}
	if h.Count() != uint64(len(vals)) || h.Max() != vals[len(vals)-1] || h.Min() != vals[0] {
		t.Errorf("count/min/max = %d/%d/%d", h.Count(), h.Min(), h.Max())
	}
}

func TestMerge(t *testing.T) {
	a, b := NewHistogram(), NewHistogram()
	for i := uint64(1); i <= 100; i++ {
		a.Record(i)
		b.Record(i + 100)
	}
	a.Merge(b)
	if a.Count() != 200 || a.Min() != 1 || a.Max() != 200 || a.Percentile(50) != 100 {
		t.Fatalf("merged: count %d min %d max %d p50 %d", a.Count(), a.Min(), a.Max(), a.Percentile(50))
	}
	if e := NewHistogram(); e.Percentile(99) != 0 || e.Min() != 0 || e.Mean() != 0 {
		t.Fatal("empty histogram should report zeros")
	}
}

func TestMedianRatio(t *testing.T) {
	if m := Median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("odd median %v", m)
	}
	if m := Median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("even median %v", m)
	}
	if !math.IsNaN(Median(nil)) || !math.IsNaN(Ratio(1, 0)) || Ratio(3, 2) != 1.5 {
		t.Error("median/ratio edge cases")
	}
}
