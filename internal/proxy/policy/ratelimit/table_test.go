package ratelimit

import (
	"hash/maphash"
	"strings"
	"sync"
	"testing"
)

// newStringTable returns a table of string keys as the header limits use.
func newStringTable(maxKeys int) *table[string] {
	seed := maphash.MakeSeed()
	return newTable(maxKeys, func(s string) uint64 { return maphash.String(seed, s) }, strings.Clone)
}

// TestTableShards checks the shard count and that the shards' capacities add up to the bound.
func TestTableShards(t *testing.T) {
	for _, tt := range []struct{ maxKeys, shards int }{
		{0, 1}, {1, 1}, {31, 1}, {32, 2}, {100, 4}, {1000, 32}, {100000, 64},
	} {
		tb := newStringTable(tt.maxKeys)
		total := 0
		for i := range tb.shards {
			total += tb.shards[i].size
		}
		if len(tb.shards) != tt.shards || total != max(tt.maxKeys, 1) {
			t.Errorf("maxKeys %d: %d shards holding %d keys, want %d shards holding %d", tt.maxKeys, len(tb.shards), total, tt.shards, max(tt.maxKeys, 1))
		}
	}
}

// TestTableBound adds many more keys than the table holds: it never holds more than its bound, and
// fills up to it.
func TestTableBound(t *testing.T) {
	for _, maxKeys := range []int{1, 7, 100, 1000} {
		tb := newStringTable(maxKeys)
		for i := range 20 * maxKeys {
			tb.get("key-" + itoa(i))
			if n := tb.len(); n > maxKeys {
				t.Fatalf("maxKeys %d: holds %d keys after %d added", maxKeys, n, i+1)
			}
		}
		if n := tb.len(); n < maxKeys*9/10 {
			t.Errorf("maxKeys %d: holds only %d keys after %d added", maxKeys, n, 20*maxKeys)
		}
	}
}

// TestTableKeepsKeysInUse churns a table with keys seen once: a key in use keeps its slot, and the
// one-off keys evict each other.
func TestTableKeepsKeysInUse(t *testing.T) {
	tb := newStringTable(64) // 4 shards of 16
	hot := tb.get("hot")
	hot.v.Store(42)
	for i := range 5000 {
		tb.get("one-off-" + itoa(i))
		if s := tb.get("hot"); s != hot {
			t.Fatalf("the hot key lost its slot after %d one-off keys", i+1)
		}
	}
	if hot.v.Load() != 42 {
		t.Fatal("the hot key's state changed")
	}
	if s := tb.lookup("one-off-0"); s != nil {
		t.Error("the first one-off key is still there after 5000 more")
	}
	if s := tb.lookup("never"); s != nil {
		t.Error("lookup found a key never added")
	}
	if n := tb.len(); n > 64 {
		t.Errorf("holds %d keys, bound 64", n)
	}
}

// TestTableSecondChance checks CLOCK's order in one shard: a key seen twice outlives older and
// newer keys seen once.
func TestTableSecondChance(t *testing.T) {
	tb := newStringTable(16) // one shard
	tb.get("twice")
	tb.get("twice")
	for i := range 15 {
		tb.get("once-" + itoa(i))
	}
	tb.get("new") // full: evicts one key
	if tb.lookup("twice") == nil {
		t.Error("the key seen twice was evicted first")
	}
	if tb.lookup("once-0") != nil {
		t.Error("the oldest key seen once survived")
	}
	if n := tb.len(); n != 16 {
		t.Errorf("holds %d keys, want 16", n)
	}
}

// TestTableKeyIsCopied checks that a key that aliases a reused buffer is copied on insertion.
func TestTableKeyIsCopied(t *testing.T) {
	tb := newStringTable(16)
	buf := []byte("tenant-a")
	key := string(buf) // stands for a header value aliasing the connection's buffer
	s := tb.get(key)
	copy(buf, "tenant-b")
	if tb.get("tenant-a") != s {
		t.Fatal("the key did not stay what it was when added")
	}
}

// TestTableConcurrent hammers one table from several goroutines, for the race detector.
func TestTableConcurrent(t *testing.T) {
	tb := newStringTable(256)
	r := newRule(1000, 10)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5000 {
				key := "k" + itoa((i*7+g)%600)
				tb.get(key).take(&r, int64(i))
				tb.lookup(key)
			}
		}()
	}
	wg.Wait()
	if n := tb.len(); n > 256 {
		t.Fatalf("holds %d keys, bound 256", n)
	}
}

// BenchmarkTableGet measures a lookup of a known key and a token taken, from parallel goroutines.
func BenchmarkTableGet(b *testing.B) {
	tb := newStringTable(100000)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "key-" + itoa(i)
	}
	r := newRule(1e6, 100)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			tb.get(keys[i&1023]).take(&r, int64(i))
			i++
		}
	})
}
