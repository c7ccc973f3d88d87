package record

import (
	"sync"
	"sync/atomic"
)

// tapBuffer is how many records a tap may fall behind before records are dropped for it.
const tapBuffer = 1024

// Hub is where a proxy's engine publishes a record per request: into the ring, to the live
// taps, and into the edge counters.
type Hub struct {
	ring  *Ring
	stats *Stats
	ntaps atomic.Int32
	mu    sync.Mutex
	taps  map[*Tap]struct{}
}

// NewHub returns a hub with a ring of ringSize records (DefaultRingSize when < 1).
func NewHub(ringSize int) *Hub {
	return &Hub{ring: NewRing(ringSize), stats: NewStats(), taps: map[*Tap]struct{}{}}
}

// Ring returns the hub's ring of recent records.
func (h *Hub) Ring() *Ring { return h.ring }

// Stats returns the hub's edge counters.
func (h *Hub) Stats() *Stats { return h.stats }

// Publish records r: it is copied, so the caller may reuse it.
func (h *Hub) Publish(r *Record) {
	h.ring.Add(r)
	h.stats.Add(r)
	if h.ntaps.Load() == 0 {
		return
	}
	h.mu.Lock()
	for t := range h.taps {
		if t.filter.Match(r) {
			select {
			case t.ch <- *r:
			default:
				t.dropped.Add(1)
			}
		}
	}
	h.mu.Unlock()
}

// Tap is one live subscription to the records a filter matches.
type Tap struct {
	h       *Hub
	filter  *Filter
	ch      chan Record
	dropped atomic.Uint64
	once    sync.Once
}

// Tap subscribes to the records f matches until Close.
func (h *Hub) Tap(f *Filter) *Tap {
	t := &Tap{h: h, filter: f, ch: make(chan Record, tapBuffer)}
	h.mu.Lock()
	h.taps[t] = struct{}{}
	h.ntaps.Add(1)
	h.mu.Unlock()
	return t
}

// Records delivers the matching records as they are published.
func (t *Tap) Records() <-chan Record { return t.ch }

// Dropped counts records the tap missed because its reader fell behind.
func (t *Tap) Dropped() uint64 { return t.dropped.Load() }

// Close ends the subscription.
func (t *Tap) Close() {
	t.once.Do(func() {
		t.h.mu.Lock()
		delete(t.h.taps, t)
		t.h.ntaps.Add(-1)
		t.h.mu.Unlock()
	})
}
