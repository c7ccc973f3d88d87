package adaptive

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// raiseTo raises m to v if v is greater.
func raiseTo(m *atomic.Int64, v int64) {
	for {
		cur := m.Load()
		if v <= cur || m.CompareAndSwap(cur, v) {
			return
		}
	}
}

func TestConcurrentAcquireNeverExceedsLimit(t *testing.T) {
	const limit, workers, rounds = 16, 8, 20000
	l := New(Options{InitialLimit: limit, MinLimit: limit, MaxLimit: limit})
	var most, admitted atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			held := make([]Token, 0, 4)
			for i := range rounds {
				if tok, ok := l.Acquire(); ok {
					admitted.Add(1)
					raiseTo(&most, tok.inFlight)
					raiseTo(&most, int64(l.InFlight()))
					held = append(held, tok)
				}
				// Hold up to four at a time, so that the workers together press the limit.
				if len(held) == cap(held) || (i%3 == 0 && len(held) > 0) {
					l.Release(held[0], time.Millisecond, true)
					held = append(held[:0], held[1:]...)
				}
				if i%16 == 0 {
					// Let the other workers run while this one holds its tokens, however few
					// the processors.
					runtime.Gosched()
				}
			}
			for _, tok := range held {
				l.Release(tok, time.Millisecond, true)
			}
		})
	}
	wg.Wait()
	if got := most.Load(); got > limit {
		t.Fatalf("%d requests in flight, limit %d", got, limit)
	}
	if most.Load() < limit {
		t.Errorf("at most %d in flight: the test did not press the limit of %d", most.Load(), limit)
	}
	if l.InFlight() != 0 {
		t.Fatalf("InFlight = %d after every release", l.InFlight())
	}
	t.Logf("%d admitted, at most %d in flight", admitted.Load(), most.Load())
}

func TestConcurrentAdaptiveLimit(t *testing.T) {
	const workers, rounds, maxLimit = 8, 20000, 32
	clock := &tickingClock{step: 50 * time.Microsecond}
	l := New(Options{InitialLimit: 8, MaxLimit: maxLimit, SampleWindow: 10 * time.Millisecond,
		Now: clock.Now})
	var most atomic.Int64
	limits := make(map[int]bool)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			held := make([]Token, 0, 8)
			for i := range rounds {
				if tok, ok := l.Acquire(); ok {
					raiseTo(&most, tok.inFlight)
					held = append(held, tok)
				}
				if len(held) == cap(held) || (i+w)%2 == 0 && len(held) > 0 {
					tok := held[0]
					held = append(held[:0], held[1:]...)
					// Latency grows with the concurrency beyond 12; one in 5000 fails.
					rtt := time.Millisecond * time.Duration(max(tok.inFlight, 12)) / 12
					l.Release(tok, rtt, (i+w)%5000 != 0)
				}
				if i%1000 == 0 {
					mu.Lock()
					limits[l.Limit()] = true
					mu.Unlock()
				}
			}
			for _, tok := range held {
				l.Release(tok, time.Millisecond, true)
			}
		})
	}
	wg.Wait()
	if most.Load() > maxLimit {
		t.Fatalf("%d requests in flight, MaxLimit %d", most.Load(), maxLimit)
	}
	if len(limits) < 2 {
		t.Errorf("limit never moved: %v", limits)
	}
	if l.InFlight() != 0 {
		t.Fatalf("InFlight = %d after every release", l.InFlight())
	}
	t.Logf("at most %d in flight; limits seen %d, final %d", most.Load(), len(limits), l.Limit())
}

func BenchmarkAcquireRelease(b *testing.B) {
	l := New(Options{InitialLimit: 1000, MaxLimit: 1000})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if tok, ok := l.Acquire(); ok {
				l.Release(tok, time.Millisecond, true)
			}
		}
	})
}
