package record

import (
	"sync"
)

// DefaultRingSize is how many recent records a proxy keeps.
const DefaultRingSize = 4096

// Ring keeps the most recent records, overwriting the oldest.
type Ring struct {
	mu   sync.Mutex
	buf  []Record
	next int
	n    int
}

// NewRing returns a ring of size records (DefaultRingSize when size < 1).
func NewRing(size int) *Ring {
	if size < 1 {
		size = DefaultRingSize
	}
	return &Ring{buf: make([]Record, size)}
}

// Add copies r into the ring.
func (g *Ring) Add(r *Record) {
	g.mu.Lock()
	g.buf[g.next] = *r
	g.next = (g.next + 1) % len(g.buf)
	if g.n < len(g.buf) {
		g.n++
	}
	g.mu.Unlock()
}

// Find returns the records of request id, oldest first.
func (g *Ring) Find(id string) []Record {
	var out []Record
	g.each(func(r *Record) bool {
		if r.RequestID == id {
			out = append(out, *r)
		}
		return true
	})
	return out
}

// Recent returns up to n of the newest records that f matches, oldest first.
func (g *Ring) Recent(f *Filter, n int) []Record {
	var out []Record
	g.mu.Lock()
	for i := 0; i < g.n && len(out) < n; i++ {
		r := &g.buf[(g.next-1-i+len(g.buf))%len(g.buf)]
		if f.Match(r) {
			out = append(out, *r)
		}
	}
	g.mu.Unlock()
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// each calls f on every record, oldest first, until it returns false.
func (g *Ring) each(f func(*Record) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	start := (g.next - g.n + len(g.buf)) % len(g.buf)
	for i := 0; i < g.n; i++ {
		if !f(&g.buf[(start+i)%len(g.buf)]) {
			return
		}
	}
}
