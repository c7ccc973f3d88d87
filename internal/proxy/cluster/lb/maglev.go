package lb

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/meshgate/meshgate/internal/proxy/cluster/xxhash"
)

// maglevSizes are the lookup-table sizes, all prime. The smallest one at least
// maglevSlotsPerTarget times the target count is used, which keeps the per-target imbalance of the
// table within about 1% (Maglev paper, section 5.3).
var maglevSizes = []uint64{65537, 131071, 262139, 524287, 1048573}

const maglevSlotsPerTarget = 100

const maglevEmpty = ^uint32(0)

// maglev is Maglev consistent hashing (Eisenbud et al., NSDI 2016): a lookup table of prime size M
// filled by letting the targets take turns claiming the next free slot of their own permutation
// (offset + j*skip) mod M, where offset and skip derive from two hashes of the target's key.
// Weights are honoured as in Envoy: a target with weight w takes a turn in w/maxWeight of the
// rounds. A hash maps to table[hash mod M].
//
// Target indexes are stored in 16 bits (fewer than 65536 targets, always the case in practice), so a
// 65537-slot table takes 128 KiB and stays in the CPU's L2 cache; wide is used otherwise.
type maglev struct {
	table []uint16
	wide  []uint32
}

func maglevSize(n int) (uint64, error) {
	for _, m := range maglevSizes {
		if m >= uint64(n)*maglevSlotsPerTarget {
			return m, nil
		}
	}
	m := maglevSizes[len(maglevSizes)-1]
	if uint64(n) > m {
		return 0, fmt.Errorf("lb: maglev: %d targets exceed the largest table (%d slots)", n, m)
	}
	return m, nil
}

func newMaglev(targets []Target, w []uint64) (*maglev, error) {
	m, err := maglevSize(len(targets))
	if err != nil {
		return nil, err
	}
	type entry struct {
		index  uint32 // position in targets
		weight uint64
		pos    uint64 // next slot of the permutation to try
		skip   uint64
		due    uint64 // the target takes its next turn once round*weight reaches due
	}
	entries := make([]entry, len(targets))
	var maxWeight uint64
	for i := range targets {
		key := targets[i].Key
		entries[i] = entry{
			index:  uint32(i),
			weight: w[i],
			pos:    xxhash.Sum64StringSeed(key, 0) % m,
			skip:   xxhash.Sum64StringSeed(key, 1)%(m-1) + 1,
		}
		maxWeight = max(maxWeight, w[i])
	}
	// Turns are taken in key order, not config order, so that replicas that list the same
	// endpoints in a different order build the same table.
	slices.SortStableFunc(entries, func(a, b entry) int {
		return cmp.Compare(targets[a.index].Key, targets[b.index].Key)
	})
	table := make([]uint32, m)
	for i := range table {
		table[i] = maglevEmpty
	}
	filled := uint64(0)
	// The heaviest target takes a turn every round, so there are at most m rounds.
	for round := uint64(1); filled < m; round++ {
		for k := range entries {
			e := &entries[k]
			if round*e.weight < e.due {
				continue
			}
			e.due += maxWeight
			for table[e.pos] != maglevEmpty {
				e.pos = (e.pos + e.skip) % m
			}
			table[e.pos] = e.index
			e.pos = (e.pos + e.skip) % m
			filled++
			if filled == m {
				break
			}
		}
	}
	if len(targets) > math.MaxUint16 {
		return &maglev{wide: table}, nil
	}
	narrow := make([]uint16, m)
	for i, x := range table {
		narrow[i] = uint16(x)
	}
	return &maglev{table: narrow}, nil
}

// Pick implements Balancer.
func (g *maglev) Pick(hash uint64, hasHash bool) int {
	if !hasHash {
		hash = rand.Uint64()
	}
	if g.wide != nil {
		return int(g.wide[hash%uint64(len(g.wide))])
	}
	return int(g.table[hash%uint64(len(g.table))])
}
