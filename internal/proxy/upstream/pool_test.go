package upstream

import (
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/proxy"
)

// testLimiter is a ConnLimiter with fixed thresholds that records its peak.
type testLimiter struct {
	maxConns, maxPending int64
	conns, pending, peak atomic.Int64
	overflows            atomic.Int64
}

var (
	errPending  = proxy.Fail(503, "circuit_open", errors.New("too many pending"))
	errOverflow = proxy.Fail(503, "circuit_open", errors.New("too many connections"))
)

func (l *testLimiter) AcquireConn() bool {
	n := l.conns.Add(1)
	if n > l.maxConns {
		l.conns.Add(-1)
		return false
	}
	for p := l.peak.Load(); n > p && !l.peak.CompareAndSwap(p, n); p = l.peak.Load() {
	}
	return true
}

func (l *testLimiter) ReleaseConn() { l.conns.Add(-1) }

func (l *testLimiter) BeginPending() error {
	if l.pending.Add(1) > l.maxPending {
		l.pending.Add(-1)
		return errPending
	}
	return nil
}

func (l *testLimiter) EndPending() { l.pending.Add(-1) }

func (l *testLimiter) ConnOverflow() error { l.overflows.Add(1); return errOverflow }

// sink is a TCP server that accepts connections, counts them and holds them open.
type sink struct {
	ln       net.Listener
	accepted atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
	done     chan struct{}
}

func newSink(t *testing.T) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-s.done
		s.mu.Lock()
		for _, c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
	})
	return s
}

func (s *sink) addr() string { return s.ln.Addr().String() }

func newTestTransport(t *testing.T, opts HTTP1Options) *HTTP1 {
	t.Helper()
	opts.ConnectTimeout = time.Second
	tr := NewHTTP1(opts)
	t.Cleanup(tr.Close)
	return tr
}

// getAsync runs p.get in the background and returns its result on a channel.
func getAsync(p *connPool, deadline time.Time) <-chan error {
	ch := make(chan error, 1)
	go func() {
		uc, err := p.get(deadline)
		if err == nil {
			uc.pool.put(uc)
		}
		ch <- err
	}()
	return ch
}

func TestPoolHandsAReturnedConnectionToAWaiter(t *testing.T) {
	s := newSink(t)
	tr := newTestTransport(t, HTTP1Options{MaxConnsPerEndpoint: 1, MaxIdlePerEndpoint: 4})
	p := tr.pool(s.addr())
	uc, err := p.get(time.Now().Add(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	done := getAsync(p, time.Now().Add(5*time.Second))
	waitUntil(t, "the second request waits", func() bool { return waiting(p) == 1 })
	start := time.Now()
	p.put(uc)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the waiter got the returned connection after %v", d)
	}
	time.Sleep(20 * time.Millisecond) // a second dial, were there one, would arrive by now
	if n := s.accepted.Load(); n != 1 {
		t.Fatalf("%d connections dialled, want 1 (the returned one reused)", n)
	}
}

func TestPoolEndpointLimitDeadline(t *testing.T) {
	s := newSink(t)
	tr := newTestTransport(t, HTTP1Options{MaxConnsPerEndpoint: 1})
	p := tr.pool(s.addr())
	uc, err := p.get(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.close()
	_, err = p.get(time.Now().Add(50 * time.Millisecond))
	var pe *proxy.Error
	if !errors.As(err, &pe) || pe.Reason != proxy.ReasonUpstreamUnavailable {
		t.Fatalf("waiting past the deadline: %v, want upstream_unavailable", err)
	}
	if waiting(p) != 0 {
		t.Fatal("the waiter that gave up is still in line")
	}
}

func TestPoolServiceLimit(t *testing.T) {
	a, b := newSink(t), newSink(t)
	lim := &testLimiter{maxConns: 1, maxPending: 1}
	tr := newTestTransport(t, HTTP1Options{Limiter: lim, MaxIdlePerEndpoint: 4})
	pa, pb := tr.pool(a.addr()), tr.pool(b.addr())
	uc, err := pa.get(time.Now().Add(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// The service has its one connection: a request to the other endpoint waits...
	done := getAsync(pb, time.Now().Add(5*time.Second))
	waitUntil(t, "the request to b waits", func() bool { return waiting(pb) == 1 })
	// ...and one more than maxPending is refused at once.
	start := time.Now()
	if _, err := pb.get(time.Now().Add(5 * time.Second)); err != errPending {
		t.Fatalf("a request beyond maxPending: %v, want the limiter's error", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("refusal took %v", d)
	}
	// Closing a's connection gives its place to b's waiter.
	uc.close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "b accepts the connection", func() bool { return b.accepted.Load() == 1 })
	if lim.peak.Load() != 1 || lim.pending.Load() != 0 {
		t.Fatalf("b accepted %d, peak %d, pending %d", b.accepted.Load(), lim.peak.Load(), lim.pending.Load())
	}
	// b's connection is idle now: a request to a takes its place by closing it.
	if _, err := pa.get(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatalf("a request to a while b's connection sat idle: %v", err)
	}
	if lim.peak.Load() != 1 {
		t.Fatalf("peak %d connections, want 1", lim.peak.Load())
	}
	// Waiting until the deadline with the service at its limit is an overflow.
	if _, err := pb.get(time.Now().Add(50 * time.Millisecond)); err != errOverflow {
		t.Fatalf("waiting past the deadline: %v, want the overflow error", err)
	}
}

func TestPoolUpgradeNeverGetsAnIdleConnection(t *testing.T) {
	s := newSink(t)
	tr := newTestTransport(t, HTTP1Options{MaxConnsPerEndpoint: 1, MaxIdlePerEndpoint: 4})
	p := tr.pool(s.addr())
	uc, err := p.get(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *upConn, 1)
	go func() {
		fresh, err := p.dial(time.Now().Add(5 * time.Second))
		if err != nil {
			t.Error(err)
		}
		got <- fresh
	}()
	waitUntil(t, "the upgrade waits", func() bool { return waiting(p) == 1 })
	p.put(uc) // idle now, not handed to the upgrade
	select {
	case <-got:
		t.Fatal("the upgrade was given the returned connection")
	case <-time.After(50 * time.Millisecond):
	}
	p.closeIdle(time.Time{}) // closing it frees the place for a new connection
	fresh := <-got
	if fresh == nil || fresh.reused {
		t.Fatalf("upgrade connection %+v", fresh)
	}
	waitUntil(t, "a second connection arrives", func() bool { return s.accepted.Load() == 2 })
	fresh.close()
}

func TestPoolConcurrentLimits(t *testing.T) {
	sinks := []*sink{newSink(t), newSink(t), newSink(t), newSink(t)}
	lim := &testLimiter{maxConns: 3, maxPending: 1000}
	tr := newTestTransport(t, HTTP1Options{Limiter: lim, MaxConnsPerEndpoint: 2, MaxIdlePerEndpoint: 2})
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := range 24 {
		wg.Go(func() {
			for i := range 150 {
				p := tr.pool(sinks[(g+i)%len(sinks)].addr())
				uc, err := p.get(time.Now().Add(10 * time.Second))
				if err != nil {
					failed.Add(1)
					t.Errorf("get: %v", err)
					return
				}
				if rand.IntN(4) == 0 {
					uc.close()
				} else {
					p.put(uc)
				}
			}
		})
	}
	wg.Wait()
	if lim.peak.Load() > 3 {
		t.Fatalf("peak %d connections, limit 3", lim.peak.Load())
	}
	if lim.pending.Load() != 0 || tr.limitWaiters.Load() != 0 {
		t.Fatalf("pending %d, limit waiters %d after all ended", lim.pending.Load(), tr.limitWaiters.Load())
	}
	for _, s := range sinks {
		p := tr.pool(s.addr())
		if waiting(p) != 0 {
			t.Fatal("waiters left in line")
		}
	}
}

// waiting returns how many requests wait in p's line.
func waiting(p *connPool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiters)
}

// waitUntil polls cond for up to five seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
