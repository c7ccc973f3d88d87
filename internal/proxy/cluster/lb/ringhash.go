package lb

import (
	"math/bits"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/meshgate/meshgate/internal/proxy/cluster/xxhash"
)

// Ring sizing. Each unit of (GCD-normalised) weight owns ringPointsPerWeight points, so a target's
// points do not depend on which other targets are present: removing a target moves only the keys
// that it owned. Rings that would exceed maxRingPoints are scaled down proportionally.
const (
	ringPointsPerWeight = 1024
	maxRingPoints       = 1 << 18
)

// ringHash is a Ketama-style consistent-hash ring. Target i owns the points
// XXH64(Key + "_" + j) for j in [0, points(i)); a hash maps to the owner of the first point at or
// after it, wrapping around.
//
// A bucket index over the top bits of the hash narrows the binary search to the few points of one
// bucket, so a lookup touches two or three cache lines instead of walking a ring of tens of
// thousands of points.
type ringHash struct {
	hashes []uint64 // sorted point positions
	owners []uint32 // owners[k] owns hashes[k]
	// buckets[b] is the index of the first point whose top bits are at least b; it has
	// 2^bits+1 entries, the last one len(hashes).
	buckets []uint32
	shift   uint // 64 - bits
}

type ringPoint struct {
	hash  uint64
	owner uint32
}

func newRingHash(targets []Target, w []uint64) *ringHash {
	total := sum(w)
	points := make([]uint64, len(w))
	if total*ringPointsPerWeight <= maxRingPoints {
		for i, x := range w {
			points[i] = x * ringPointsPerWeight
		}
	} else {
		for i, x := range w {
			points[i] = max(1, uint64(float64(x)/float64(total)*maxRingPoints))
		}
	}
	ring := make([]ringPoint, 0, sum(points))
	var buf []byte
	for i := range targets {
		for j := range points[i] {
			buf = append(buf[:0], targets[i].Key...)
			buf = append(buf, '_')
			buf = strconv.AppendUint(buf, j, 10)
			ring = append(ring, ringPoint{hash: xxhash.Sum64(buf), owner: uint32(i)})
		}
	}
	// Ties (64-bit collisions) are broken by key so that the ring does not depend on target order.
	slices.SortFunc(ring, func(a, b ringPoint) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		case targets[a.owner].Key < targets[b.owner].Key:
			return -1
		case targets[a.owner].Key > targets[b.owner].Key:
			return 1
		}
		return 0
	})
	r := &ringHash{hashes: make([]uint64, len(ring)), owners: make([]uint32, len(ring))}
	for k, p := range ring {
		r.hashes[k] = p.hash
		r.owners[k] = p.owner
	}
	// About one point per bucket.
	nbits := uint(bits.Len(uint(len(ring))))
	r.shift = 64 - nbits
	r.buckets = make([]uint32, 1<<nbits+1)
	k := 0
	for b := range r.buckets {
		for k < len(r.hashes) && r.hashes[k]>>r.shift < uint64(b) {
			k++
		}
		r.buckets[b] = uint32(k)
	}
	return r
}

// Pick implements Balancer.
func (r *ringHash) Pick(hash uint64, hasHash bool) int {
	if !hasHash {
		hash = rand.Uint64()
	}
	b := hash >> r.shift
	lo, hi := int(r.buckets[b]), int(r.buckets[b+1])
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.hashes[m] < hash {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(r.hashes) {
		lo = 0
	}
	return int(r.owners[lo])
}
