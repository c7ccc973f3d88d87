package telemetry

import (
	"sync"
	"time"

	"github.com/meshgate/meshgate/internal/observe/record"
)

// Window keeps the edge counters every proxy reported, in buckets of Step, for Span.
type Window struct {
	step, span time.Duration
	now        func() time.Time

	mu      sync.Mutex
	buckets []bucket
}

type bucket struct {
	start time.Time
	edges map[record.EdgeKey]*record.EdgeCounts
}

// NewWindow keeps span of counters in buckets of step.
func NewWindow(step, span time.Duration, now func() time.Time) *Window {
	if now == nil {
		now = time.Now
	}
	return &Window{step: step, span: span, now: now}
}

// Add folds a proxy's report in, into the current bucket.
func (w *Window) Add(edges []record.Edge) {
	now := w.now()
	start := now.Truncate(w.step)
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.buckets); n == 0 || w.buckets[n-1].start != start {
		w.buckets = append(w.buckets, bucket{start: start, edges: map[record.EdgeKey]*record.EdgeCounts{}})
	}
	cut := 0
	for cut < len(w.buckets) && now.Sub(w.buckets[cut].start) > w.span {
		cut++
	}
	w.buckets = w.buckets[cut:]
	b := w.buckets[len(w.buckets)-1].edges
	for i := range edges {
		e := &edges[i]
		c := b[e.EdgeKey]
		if c == nil {
			c = &record.EdgeCounts{}
			b[e.EdgeKey] = c
		}
		c.Merge(&e.EdgeCounts)
	}
}

// Since sums the counters of the buckets that started within d of now, per edge, and returns
// how long they cover.
func (w *Window) Since(d time.Duration) ([]record.Edge, time.Duration) {
	now := w.now()
	sum := map[record.EdgeKey]*record.EdgeCounts{}
	var oldest time.Time
	w.mu.Lock()
	for _, b := range w.buckets {
		if now.Sub(b.start) > d {
			continue
		}
		if oldest.IsZero() || b.start.Before(oldest) {
			oldest = b.start
		}
		for k, c := range b.edges {
			s := sum[k]
			if s == nil {
				s = &record.EdgeCounts{}
				sum[k] = s
			}
			s.Merge(c)
		}
	}
	w.mu.Unlock()
	out := make([]record.Edge, 0, len(sum))
	for k, c := range sum {
		out = append(out, record.Edge{EdgeKey: k, EdgeCounts: *c})
	}
	covered := d
	if !oldest.IsZero() && now.Sub(oldest) < d {
		covered = max(now.Sub(oldest), w.step)
	}
	return out, covered
}
