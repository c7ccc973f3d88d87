package adaptive

import (
	"sync/atomic"
	"testing"
	"time"
)

// epoch is where the test clocks start.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeClock is a clock that moves only when told to.
type fakeClock struct{ now time.Time }

func newFakeClock() *fakeClock { return &fakeClock{now: epoch} }

// Now returns the clock's time.
func (c *fakeClock) Now() time.Time { return c.now }

// Advance moves the clock by d.
func (c *fakeClock) Advance(d time.Duration) { c.now = c.now.Add(d) }

// tickingClock is a clock safe for concurrent use that moves by step at every reading.
type tickingClock struct {
	step  time.Duration
	ticks atomic.Int64
}

// Now advances the clock and returns its time.
func (c *tickingClock) Now() time.Time {
	return epoch.Add(c.step * time.Duration(c.ticks.Add(1)))
}

// harness drives a Limiter on a fake clock one sample window at a time.
type harness struct {
	t     *testing.T
	l     *Limiter
	clock *fakeClock
}

func newHarness(t *testing.T, o Options) *harness {
	t.Helper()
	clock := newFakeClock()
	o.Now = clock.Now
	return &harness{t: t, l: New(o), clock: clock}
}

// all asks harness.window to admit requests until the limit refuses one.
const all = 1 << 30

// window runs one sample window: rounds of admitting up to conc requests together (fewer when
// the limit refuses) and releasing them with rtt and ok, until the window holds MinSamples
// outcomes; the last release comes when the window is due, and closes it. It returns the most
// requests a round had in flight.
func (h *harness) window(conc int, rtt time.Duration, ok bool) int {
	h.t.Helper()
	due := h.clock.Now().Add(h.l.opts.SampleWindow)
	outcomes, most := 0, 0
	for {
		var tokens []Token
		for len(tokens) < conc {
			tok, admitted := h.l.Acquire()
			if !admitted {
				break
			}
			tokens = append(tokens, tok)
		}
		if len(tokens) == 0 {
			h.t.Fatalf("limit %d refused every request with %d in flight", h.l.Limit(), h.l.InFlight())
		}
		most = max(most, len(tokens))
		last := outcomes+len(tokens) >= h.l.opts.MinSamples
		for i, tok := range tokens {
			if last && i == len(tokens)-1 {
				h.clock.now = due
			}
			h.l.Release(tok, rtt, ok)
		}
		outcomes += len(tokens)
		if last {
			return most
		}
	}
}

// windows runs n windows like window and returns the limit after each.
func (h *harness) windows(n, conc int, rtt time.Duration, ok bool) []int {
	h.t.Helper()
	limits := make([]int, n)
	for i := range limits {
		h.window(conc, rtt, ok)
		limits[i] = h.l.Limit()
	}
	return limits
}

// baseline returns the limiter's baseline RTT.
func (h *harness) baseline() time.Duration {
	return time.Duration(h.l.gradient.baseline)
}

// probing reports whether the limiter is probing its baseline.
func (h *harness) probing() bool { return probing(h.l) }

// probe completes the probe in progress like completeProbe.
func (h *harness) probe(rtt time.Duration) int {
	h.t.Helper()
	return completeProbe(h.t, h.l, rtt)
}

// completeProbe completes l's probe in progress: rounds of admitting every request the limit
// allows and releasing them with rtt. It returns the most a round admitted.
func completeProbe(t *testing.T, l *Limiter, rtt time.Duration) int {
	t.Helper()
	if !probing(l) {
		t.Fatal("no probe in progress")
	}
	most := 0
	for i := 0; probing(l); i++ {
		if i == 1000 {
			t.Fatal("the probe did not end")
		}
		var tokens []Token
		for {
			tok, ok := l.Acquire()
			if !ok {
				break
			}
			tokens = append(tokens, tok)
		}
		most = max(most, len(tokens))
		for _, tok := range tokens {
			l.Release(tok, rtt, true)
		}
	}
	return most
}

// probing reports whether l is probing its baseline.
func probing(l *Limiter) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.probe.active
}

// started returns a harness whose limiter has completed its first probe at rtt.
func started(t *testing.T, o Options, rtt time.Duration) *harness {
	t.Helper()
	h := newHarness(t, o)
	h.probe(rtt)
	return h
}
