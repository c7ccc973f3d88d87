package adaptive

import (
	"math"
	"reflect"
	"testing"
	"time"
)

const ms = time.Millisecond

func TestDefaults(t *testing.T) {
	l := New(Options{})
	want := Options{
		InitialLimit: 20, MinLimit: 3, MaxLimit: 1000, SampleWindow: 100 * ms, MinSamples: 10,
		Tolerance: 1.5, Smoothing: 0.2, LongWindow: 600,
	}
	got := l.opts
	got.Now = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
	if l.Limit() != 20 || l.InFlight() != 0 {
		t.Errorf("Limit, InFlight = %d, %d; want 20, 0", l.Limit(), l.InFlight())
	}
}

func TestOptionsOutOfRange(t *testing.T) {
	for _, tc := range []struct {
		name      string
		o         Options
		limit     int
		min, max  int
		tolerance float64
		smoothing float64
	}{
		{"initial below min", Options{InitialLimit: 2, MinLimit: 5}, 5, 5, 1000, 1.5, 0.2},
		{"initial above max", Options{InitialLimit: 50, MaxLimit: 30}, 30, 3, 30, 1.5, 0.2},
		{"max below min", Options{MinLimit: 40, MaxLimit: 30}, 40, 40, 40, 1.5, 0.2},
		{"tolerance below 1", Options{Tolerance: 0.5}, 20, 3, 1000, 1, 0.2},
		{"smoothing above 1", Options{Smoothing: 2}, 20, 3, 1000, 1.5, 0.2},
		{"negative", Options{InitialLimit: -1, MinLimit: -1, MaxLimit: -1, Tolerance: -1,
			Smoothing: -1}, 20, 3, 1000, 1.5, 0.2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New(tc.o)
			o := l.opts
			if l.Limit() != tc.limit || o.MinLimit != tc.min || o.MaxLimit != tc.max ||
				o.Tolerance != tc.tolerance || o.Smoothing != tc.smoothing {
				t.Errorf("limit %d min %d max %d tolerance %v smoothing %v; want %d %d %d %v %v",
					l.Limit(), o.MinLimit, o.MaxLimit, o.Tolerance, o.Smoothing,
					tc.limit, tc.min, tc.max, tc.tolerance, tc.smoothing)
			}
		})
	}
}

func TestAcquireStopsAtLimit(t *testing.T) {
	l := New(Options{InitialLimit: 5, MinLimit: 5, MaxLimit: 5})
	var tokens []Token
	for i := range 5 {
		tok, ok := l.Acquire()
		if !ok {
			t.Fatalf("request %d refused below the limit", i+1)
		}
		tokens = append(tokens, tok)
	}
	if _, ok := l.Acquire(); ok {
		t.Fatal("request admitted at the limit")
	}
	if l.InFlight() != 5 {
		t.Fatalf("InFlight = %d, want 5", l.InFlight())
	}
	l.Release(tokens[0], 10*ms, true)
	if _, ok := l.Acquire(); !ok {
		t.Fatal("request refused after a release")
	}
	if l.InFlight() != 5 {
		t.Fatalf("InFlight = %d, want 5", l.InFlight())
	}
}

func TestReleaseIgnoresZeroToken(t *testing.T) {
	l := New(Options{})
	if _, ok := l.Acquire(); !ok {
		t.Fatal("refused")
	}
	l.Release(Token{}, 10*ms, true)
	if l.InFlight() != 1 {
		t.Fatalf("InFlight = %d after releasing a zero Token, want 1", l.InFlight())
	}
}

func TestSteadyLatencyGrowsToMax(t *testing.T) {
	h := newHarness(t, Options{MaxLimit: 200})
	limits := h.windows(400, all, 10*ms, true)
	for i := 1; i < len(limits); i++ {
		if limits[i] < limits[i-1] {
			t.Fatalf("window %d: limit fell from %d to %d at steady latency", i, limits[i-1], limits[i])
		}
	}
	reached := -1
	for i, v := range limits {
		if v == 200 {
			reached = i
			break
		}
	}
	if reached < 0 {
		t.Fatalf("limit %d after %d windows, want MaxLimit 200", limits[len(limits)-1], len(limits))
	}
	for _, v := range limits[:warmupWindows] {
		if v != 20 {
			t.Fatalf("limit moved to %d while the long RTT warmed up", v)
		}
	}
	t.Logf("MaxLimit reached after %d windows", reached+1)
}

func TestAppLimitedDoesNotGrow(t *testing.T) {
	h := newHarness(t, Options{})
	for i, v := range h.windows(300, 9, 10*ms, true) { // 9 < 20/2 in flight
		if v > 20 {
			t.Fatalf("window %d: app-limited limit grew to %d", i, v)
		}
	}
	// The same latency with the limit reached grows it.
	h.windows(20, all, 10*ms, true)
	if h.l.Limit() <= 20 {
		t.Fatalf("limit %d, want growth once the load reaches it", h.l.Limit())
	}
}

func TestQueueingShrinksLimit(t *testing.T) {
	h := newHarness(t, Options{})
	h.windows(100, all, 10*ms, true)
	prev := h.l.Limit()
	for i := 0; prev > 4; i++ {
		if i == 100 {
			t.Fatalf("limit %d after 100 windows beyond tolerance, want the floor 4", prev)
		}
		h.window(all, 40*ms, true) // 4x the long RTT: beyond tolerance
		v := h.l.Limit()
		if v > prev {
			t.Fatalf("window %d: limit grew from %d to %d beyond tolerance", i, prev, v)
		}
		if float64(v) < 0.9*float64(prev)-1 {
			t.Fatalf("window %d: limit fell from %d to %d, more than Smoothing/2", i, prev, v)
		}
		prev = v
	}
}

func TestSlowerBackendIsRelearned(t *testing.T) {
	h := newHarness(t, Options{})
	h.windows(100, all, 10*ms, true)
	// The backend takes 40ms now whatever the concurrency: shedding to the floor cannot help.
	limits := h.windows(300, all, 40*ms, true)
	floor := -1
	for i, v := range limits {
		if v == 4 && floor < 0 {
			floor = i
		}
	}
	if floor < 0 {
		t.Fatal("limit never reached the floor")
	}
	if got := h.longRTT(); got < 35*ms || got > 40*ms {
		t.Fatalf("long RTT %v, want the new latency 40ms learned", got)
	}
	if got := limits[len(limits)-1]; got < 100 {
		t.Fatalf("limit %d after the long RTT was relearned, want growth again", got)
	}
	for i, v := range limits[floor : floor+warmupWindows] {
		if v != 4 {
			t.Fatalf("limit %d at window %d while relearning at the floor, want 4", v, floor+i)
		}
	}
}

func TestOwnQueueIsNotLearned(t *testing.T) {
	h := newHarness(t, Options{})
	h.windows(50, all, 10*ms, true)
	// 1.7x the long RTT with the limit reached: the queue the limit lets build up at equilibrium.
	// Learning it would raise the long RTT by a tenth every 40 windows or so.
	h.windows(2000, all, 17*ms, true)
	if got := h.longRTT(); got > 10100*time.Microsecond {
		t.Fatalf("long RTT %v after the limiter's own queue, want 10ms", got)
	}
}

func TestSpikeRecovery(t *testing.T) {
	h := newHarness(t, Options{MaxLimit: 100})
	h.windows(100, all, 10*ms, true)
	if h.l.Limit() != 100 {
		t.Fatalf("limit %d before the spike, want 100", h.l.Limit())
	}
	// A lasting spike: shedding to the floor does not help, so the long RTT is learned anew.
	h.windows(150, all, 60*ms, true)
	if h.longRTT() < 50*ms {
		t.Fatalf("long RTT %v after a lasting spike, want about 60ms", h.longRTT())
	}
	// Latency drops back: the long RTT decays and the limit grows back.
	limits := h.windows(200, all, 10*ms, true)
	if h.longRTT() > 20*ms {
		t.Errorf("long RTT %v 200 windows after the spike, want back within 2x of 10ms", h.longRTT())
	}
	if got := limits[len(limits)-1]; got != 100 {
		t.Errorf("limit %d 200 windows after the spike, want back at 100", got)
	}
	// The decay and the saturated windows brought it down, not the 600-window average: that
	// alone would take hundreds of windows.
	h2 := newHarness(t, Options{MaxLimit: 100})
	h2.windows(100, all, 10*ms, true)
	h2.windows(150, all, 60*ms, true)
	for i := range 40 {
		h2.window(all, 10*ms, true)
		if h2.longRTT() <= 20*ms {
			t.Logf("long RTT back within 2x after %d windows", i+1)
			return
		}
	}
	t.Errorf("long RTT %v 40 windows after the spike, want within 2x of 10ms", h2.longRTT())
}

func TestDropsShrinkLimit(t *testing.T) {
	h := newHarness(t, Options{MaxLimit: 100})
	h.windows(100, all, 10*ms, true)
	want := 100.0
	for i := range 40 {
		h.window(all, 50*ms, false)
		want = max(want*dropFactor, 3)
		if got := h.l.Limit(); got != int(want) {
			t.Fatalf("after %d drop windows: limit %d, want %d", i+1, got, int(want))
		}
	}
	if h.l.Limit() != 3 {
		t.Fatalf("limit %d after 40 drop windows, want MinLimit 3", h.l.Limit())
	}
}

func TestOneDropShrinksWindow(t *testing.T) {
	h := newHarness(t, Options{MaxLimit: 100})
	h.windows(100, all, 10*ms, true)
	var tokens []Token
	for range 20 {
		tok, _ := h.l.Acquire()
		tokens = append(tokens, tok)
	}
	h.l.Release(tokens[0], time.Second, false)
	h.clock.Advance(h.l.opts.SampleWindow)
	for _, tok := range tokens[1:] {
		h.l.Release(tok, 10*ms, true)
	}
	if h.l.Limit() != 90 {
		t.Fatalf("limit %d after a window with one drop, want 90", h.l.Limit())
	}
	if h.longRTT() != 10*ms {
		t.Fatalf("long RTT %v, want 10ms: a drop's RTT is not sampled", h.longRTT())
	}
}

func TestMinMaxLimit(t *testing.T) {
	h := newHarness(t, Options{InitialLimit: 10, MinLimit: 5, MaxLimit: 30})
	for i, v := range h.windows(200, all, 10*ms, true) {
		if v > 30 {
			t.Fatalf("window %d: limit %d above MaxLimit", i, v)
		}
	}
	if h.l.Limit() != 30 {
		t.Fatalf("limit %d, want MaxLimit 30", h.l.Limit())
	}
	for i, v := range h.windows(100, all, time.Second, true) {
		if v < 5 {
			t.Fatalf("window %d: limit %d below MinLimit under latency", i, v)
		}
	}
	for i, v := range h.windows(50, all, 10*ms, false) {
		if v < 5 {
			t.Fatalf("window %d: limit %d below MinLimit under drops", i, v)
		}
	}
	if h.l.Limit() != 5 {
		t.Fatalf("limit %d, want MinLimit 5", h.l.Limit())
	}
}

func TestThinWindowMerges(t *testing.T) {
	h := newHarness(t, Options{})
	release := func(n int, rtt time.Duration) {
		for range n {
			tok, _ := h.l.Acquire()
			h.l.Release(tok, rtt, true)
		}
	}
	h.clock.Advance(time.Second)
	release(9, 10*ms) // due, but one sample short
	if h.l.gradient.long.windows != 0 {
		t.Fatal("a window with fewer than MinSamples outcomes closed")
	}
	h.clock.Advance(time.Second)
	release(1, 40*ms)
	if h.l.gradient.long.windows != 1 {
		t.Fatal("the merged window did not close at MinSamples outcomes")
	}
	if got, want := h.longRTT(), 13*ms; got != want {
		t.Fatalf("short RTT of the merged window %v, want the mean %v", got, want)
	}
	release(20, 10*ms) // not due: the next window started at the close
	if h.l.gradient.long.windows != 1 {
		t.Fatal("a window closed before SampleWindow")
	}
}

func TestShortRTTIsMean(t *testing.T) {
	var w window
	for _, rtt := range []time.Duration{10 * ms, 20 * ms, 60 * ms, 0, -ms} {
		w.record(1, rtt, true)
	}
	w.record(7, time.Hour, false)
	if w.samples != 3 || w.drops != 1 || w.maxInFlight != 7 || w.shortRTT() != float64(30*ms) {
		t.Fatalf("window %+v short %v; want 3 samples, 1 drop, max in flight 7, mean 30ms",
			w, w.shortRTT())
	}
	if (&window{}).shortRTT() != 0 {
		t.Fatal("empty window has a short RTT")
	}
}

func TestEquilibriumRatio(t *testing.T) {
	// Documented: under overload the limit settles with short/long = Tolerance/(1-1/sqrt(limit)).
	g := newGradient(New(Options{}).opts)
	g.long = baseline{rtt: float64(10 * ms), windows: warmupWindows}
	g.limit = 100
	short := g.tolerance * g.long.rtt / (1 - 1/math.Sqrt(g.limit))
	if next := g.next(short); math.Abs(next-g.limit) > 1e-9 {
		t.Fatalf("next %v at the equilibrium ratio, want %v", next, g.limit)
	}
}
