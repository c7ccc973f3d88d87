package ratelimit

import (
	"sync"
)

// Shard sizing of a table: at most maxShards shards, each holding at least minPerShard keys when
// the table has room for that many, so that CLOCK has a useful window in every shard.
const (
	maxShards   = 64
	minPerShard = 16
)

// table maps keys to slots in memory bounded by a number of keys. It is split into shards, each
// with its own lock, chosen by the key's hash. A lookup of a known key takes a shard's read lock
// only; adding a key takes its write lock and, when the shard is full, forgets one key chosen by
// the CLOCK algorithm: the hand sweeps the shard's ring, clearing reference bits, and evicts the
// first slot whose bit is clear. New slots start with a clear bit, so a flood of keys seen once
// evicts keys seen once before it evicts keys in use.
type table[K comparable] struct {
	hash   func(K) uint64
	clone  func(K) K
	mask   uint64
	shards []tableShard[K]
}

// tableShard is one lock's worth of a table.
type tableShard[K comparable] struct {
	mu   sync.RWMutex
	m    map[K]*slot
	ring []ringEntry[K] // the slots in insertion order, for the CLOCK hand
	hand int
	size int // capacity in keys

	_ [64]byte // keeps neighbouring shards' locks on different cache lines
}

// ringEntry is a slot and its key, so that eviction can remove the key from the map.
type ringEntry[K comparable] struct {
	key  K
	slot *slot
}

// newTable returns a table of at most maxKeys (at least 1) keys. hash must spread keys evenly;
// clone returns a copy of a key that does not alias memory the caller reuses.
func newTable[K comparable](maxKeys int, hash func(K) uint64, clone func(K) K) *table[K] {
	maxKeys = max(maxKeys, 1)
	n := 1
	for n*2 <= maxShards && n*2*minPerShard <= maxKeys {
		n *= 2
	}
	t := &table[K]{hash: hash, clone: clone, mask: uint64(n - 1), shards: make([]tableShard[K], n)}
	for i := range t.shards {
		size := maxKeys / n
		if i < maxKeys%n {
			size++
		}
		t.shards[i] = tableShard[K]{m: make(map[K]*slot), size: size}
	}
	return t
}

// lookup returns the slot of key, or nil when the table does not hold it.
func (t *table[K]) lookup(key K) *slot {
	sh := &t.shards[t.hash(key)&t.mask]
	sh.mu.RLock()
	s := sh.m[key]
	sh.mu.RUnlock()
	if s != nil && !s.ref.Load() {
		s.ref.Store(true)
	}
	return s
}

// get returns the slot of key, adding a zero slot when the table does not hold it.
func (t *table[K]) get(key K) *slot {
	sh := &t.shards[t.hash(key)&t.mask]
	sh.mu.RLock()
	s := sh.m[key]
	sh.mu.RUnlock()
	if s != nil {
		if !s.ref.Load() {
			s.ref.Store(true)
		}
		return s
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s := sh.m[key]; s != nil {
		return s
	}
	s = &slot{}
	key = t.clone(key)
	if len(sh.ring) < sh.size {
		sh.ring = append(sh.ring, ringEntry[K]{key: key, slot: s})
	} else {
		// A full turn clears every bit, so the hand stops within two turns, unless requests
		// keep setting bits behind it; the bound stops it then too.
		for i := 0; i < 2*sh.size && sh.ring[sh.hand].slot.ref.Load(); i++ {
			sh.ring[sh.hand].slot.ref.Store(false)
			sh.hand = (sh.hand + 1) % sh.size
		}
		delete(sh.m, sh.ring[sh.hand].key)
		sh.ring[sh.hand] = ringEntry[K]{key: key, slot: s}
		sh.hand = (sh.hand + 1) % sh.size
	}
	sh.m[key] = s
	return s
}

// len returns the number of keys the table holds.
func (t *table[K]) len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
