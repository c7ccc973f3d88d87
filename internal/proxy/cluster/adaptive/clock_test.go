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

// longRTT returns the limiter's long RTT.
func (h *harness) longRTT() time.Duration {
	return time.Duration(h.l.gradient.long.rtt)
}
