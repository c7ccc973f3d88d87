// Package stats holds the small statistics the benchmark suite needs: an HDR-style latency
// histogram with bounded relative error, and medians and ratios of per-round results.
package stats

import (
	"math"
	"math/bits"
	"sort"
)

// subBits sets the histogram's precision: each power-of-two range of values is split into
// 1<<subBits equal buckets, so a recorded value is reported within 1/(1<<subBits) (about 0.4%)
// of its true value. Values below 2<<subBits are recorded exactly.
const subBits = 8

const (
	subCount = 1 << subBits
	// maxShift bounds the histogram at values below 2^(maxShift+subBits+1) (about 1.1e12, i.e.
	// 18 minutes in nanoseconds); larger values are clamped into the last bucket.
	maxShift = 31
	nBuckets = subCount*maxShift + 2*subCount
)

// Histogram counts non-negative integer values (the suite records nanoseconds) in log-linear
// buckets, like an HdrHistogram with about two and a half significant decimal digits. The zero
// value is not usable; create one with NewHistogram. It is not safe for concurrent use: give
// each goroutine its own and Merge them.
type Histogram struct {
	counts []uint64
	total  uint64
	min    uint64
	max    uint64
	sum    float64
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, nBuckets), min: math.MaxUint64}
}

// bucketOf returns the index of the bucket holding v.
func bucketOf(v uint64) int {
	if v < 2*subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	if shift > maxShift {
		return nBuckets - 1
	}
	top := v >> uint(shift)
	return subCount*shift + int(top)
}

// highestOf returns the largest value that falls in bucket i.
func highestOf(i int) uint64 {
	if i < 2*subCount {
		return uint64(i)
	}
	shift := i/subCount - 1
	top := uint64(i - subCount*shift)
	return (top+1)<<uint(shift) - 1
}

// Record adds one value.
func (h *Histogram) Record(v uint64) {
	h.counts[bucketOf(v)]++
	h.total++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	if o.total > 0 {
		h.min = min(h.min, o.min)
		h.max = max(h.max, o.max)
	}
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest value recorded (exact), or 0 when empty.
func (h *Histogram) Max() uint64 { return h.max }

// Min is the smallest value recorded (exact), or 0 when empty.
func (h *Histogram) Min() uint64 {
	if h.total == 0 {
		return 0
	}
	return h.min
}

// Mean is the exact mean of the recorded values, or 0 when empty.
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// Percentile returns the value at or below which p percent (0..100) of the recorded values lie,
// reported as the highest value of its bucket (never above the exact maximum), or 0 when empty.
func (h *Histogram) Percentile(p float64) uint64 {
	if h.total == 0 {
		return 0
	}
	p = min(max(p, 0), 100)
	rank := uint64(math.Ceil(p / 100 * float64(h.total)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(highestOf(i), h.max)
		}
	}
	return h.max
}

// Median returns the median of xs (the mean of the two middle values for an even count), or NaN
// for an empty slice. xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Ratio returns a/b, or NaN when either is NaN or b is zero.
func Ratio(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return math.NaN()
	}
	return a / b
}
