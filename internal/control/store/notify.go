package store

import (
	"context"
	"sync"
)

// signals wakes subscribers without blocking: each has a one-slot channel, so a burst of
// notifications coalesces into one wake-up.
type signals struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// subscribe returns a channel that receives a value after each notify (coalesced) and a function
// that ends the subscription.
func (s *signals) subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	if s.subs == nil {
		s.subs = make(map[chan struct{}]struct{})
	}
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}

// notify wakes every subscriber.
func (s *signals) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		wake(ch)
	}
}

// wake puts a value in a one-slot channel unless one is already waiting.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// forwardSignals copies wake-ups from in to a new coalescing channel until ctx ends or done
// closes, then closes it; it is what WatchWorkloads returns. run is the loop to start in a
// goroutine.
func forwardSignals(ctx context.Context, done <-chan struct{}, in <-chan struct{}, stop func()) (out chan struct{}, run func()) {
	out = make(chan struct{}, 1)
	return out, func() {
		defer close(out)
		defer stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-in:
				wake(out)
			}
		}
	}
}

// deliverLatest sends to out the newest revision read by current whenever wake fires (and once at
// the start), skipping versions already sent; a receiver slower than the changes gets the newest
// and misses intermediate ones. It closes out when ctx ends or done closes. current reports
// false when there is nothing to read or the read failed. run is the loop to start in a goroutine.
func deliverLatest(ctx context.Context, done <-chan struct{}, wakeup <-chan struct{}, stop func(),
	current func(ctx context.Context) (Revision, bool)) (out chan Revision, run func()) {
	out = make(chan Revision)
	return out, func() {
		defer close(out)
		defer stop()
		var sent uint64
		for {
			if rev, ok := current(ctx); ok && rev.Version != sent {
				select {
				case out <- rev:
					sent = rev.Version
				case <-wakeup:
					continue // something newer: read again before sending
				case <-ctx.Done():
					return
				case <-done:
					return
				}
			}
			select {
			case <-wakeup:
			case <-ctx.Done():
				return
			case <-done:
				return
			}
		}
	}
}

// goroutines runs a store's background loops and waits for them on Close; once closed it
// starts no more.
type goroutines struct {
	mu     sync.Mutex
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup
}

// init prepares the done channel; call once before use.
func (g *goroutines) init() { g.done = make(chan struct{}) }

// spawn runs f in a goroutine and reports true, or reports false after close.
func (g *goroutines) spawn(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
	return true
}

// close closes done and waits for every goroutine; it reports false when already closed.
func (g *goroutines) close() bool {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false
	}
	g.closed = true
	close(g.done)
	g.mu.Unlock()
	g.wg.Wait()
	return true
}
