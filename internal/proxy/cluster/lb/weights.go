package lb

import (
	"math/rand/v2"
)

// normalizedWeights returns the targets' weights clamped to [1, MaxWeight] and divided by their
// greatest common divisor, so that 2:4:6 and 1:2:3 build identical balancers.
func normalizedWeights(targets []Target) []uint64 {
	w := make([]uint64, len(targets))
	var g uint64
	for i := range targets {
		x := uint64(1)
		if targets[i].Weight > 1 {
			x = uint64(min(targets[i].Weight, MaxWeight))
		}
		w[i] = x
		g = gcd(g, x)
	}
	if g > 1 {
		for i := range w {
			w[i] /= g
		}
	}
	return w
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func sum(w []uint64) uint64 {
	var s uint64
	for _, x := range w {
		s += x
	}
	return s
}

func allEqual(w []uint64) bool {
	for _, x := range w[1:] {
		if x != w[0] {
			return false
		}
	}
	return true
}

// weightedChoice draws an index with probability proportional to its weight: cumulative weights and
// a binary search. Equal weights skip the table.
type weightedChoice struct {
	// cum[i] is the sum of the weights of indexes 0..i; nil when all weights are equal.
	cum []uint64
	// n is the number of indexes.
	n int
}

func newWeightedChoice(w []uint64) weightedChoice {
	if allEqual(w) {
		return weightedChoice{n: len(w)}
	}
	cum := make([]uint64, len(w))
	var s uint64
	for i, x := range w {
		s += x
		cum[i] = s
	}
	return weightedChoice{cum: cum, n: len(w)}
}

// draw returns a random index, weighted.
func (c *weightedChoice) draw() int {
	if c.cum == nil {
		return rand.IntN(c.n)
	}
	return c.search(rand.Uint64N(c.cum[len(c.cum)-1]))
}

// drawExcept returns a random index other than a, weighted: a second sample without replacement.
// There must be at least two indexes.
func (c *weightedChoice) drawExcept(a int) int {
	if c.cum == nil {
		b := rand.IntN(c.n - 1)
		if b >= a {
			b++
		}
		return b
	}
	var lo uint64 // a owns the cumulative range [lo, c.cum[a])
	if a > 0 {
		lo = c.cum[a-1]
	}
	r := rand.Uint64N(c.cum[len(c.cum)-1] - (c.cum[a] - lo))
	if r >= lo {
		r += c.cum[a] - lo
	}
	return c.search(r)
}

// search returns the first index whose cumulative weight exceeds r.
func (c *weightedChoice) search(r uint64) int {
	lo, hi := 0, len(c.cum)-1
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if c.cum[m] <= r {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}
