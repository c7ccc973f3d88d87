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
		Tolerance: 1.5, Smoothing: 0.2, MinRTTInterval: 30 * time.Second, ProbeSamples: 25,
	}
	got := l.opts
	got.Now = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
	if l.Limit() != 3 || l.InFlight() != 0 {
		t.Errorf("Limit, InFlight = %d, %d during the first probe; want MinLimit 3, 0",
			l.Limit(), l.InFlight())
	}
	completeProbe(t, l, 10*ms)
	if l.Limit() != 20 {
		t.Errorf("Limit = %d after the first probe, want InitialLimit 20", l.Limit())
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
			completeProbe(t, l, 10*ms)
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
	h := started(t, Options{MaxLimit: 200, MinRTTInterval: time.Hour}, 10*ms)
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
	if limits[1] <= 20 {
		t.Fatalf("limit %d after the second window, want growth at once: the probe set the baseline",
			limits[1])
	}
	t.Logf("MaxLimit reached after %d windows", reached+1)
}

func TestAppLimitedDoesNotGrow(t *testing.T) {
	h := started(t, Options{}, 10*ms)
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
	h := started(t, Options{}, 10*ms)
	h.windows(100, all, 10*ms, true)
	prev := h.l.Limit()
	// 2.5x the baseline: beyond tolerance but not twice beyond. The limit shrinks, smoothed,
	// down towards where the gradient 1.5/2.5 and the queue allowance balance: 1/(1-0.6)^2.
	for i := 0; prev > 7; i++ {
		if i == 100 {
			t.Fatalf("limit %d after 100 windows beyond tolerance, want 7", prev)
		}
		h.window(all, 25*ms, true)
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

func TestHeavyQueueHalvesLimit(t *testing.T) {
	h := started(t, Options{MaxLimit: 100}, 10*ms)
	h.windows(100, all, 10*ms, true)
	prev := float64(h.l.Limit())
	// 4x the baseline, beyond twice the tolerance: the new limit is taken whole.
	for i := range 3 {
		h.window(all, 40*ms, true)
		want := prev*minGradient + math.Sqrt(prev)
		if got := h.l.gradient.limit; math.Abs(got-want) > 1e-9 {
			t.Fatalf("window %d: limit %v, want %v", i, got, want)
		}
		prev = want
	}
}

func TestSlowerBackendIsRelearned(t *testing.T) {
	h := started(t, Options{MinRTTInterval: time.Hour}, 10*ms)
	h.windows(100, all, 10*ms, true)
	// The backend takes 3x as long now whatever the concurrency: shedding cannot help, so the
	// limit sheds to the floor, where stuckWindows windows beyond tolerance start a probe.
	floorAt := -1
	for i := 0; !h.probing(); i++ {
		if i == 100 {
			t.Fatalf("no probe in 100 windows of a 3x slower backend; limit %d", h.l.Limit())
		}
		h.window(all, 30*ms, true)
		if h.l.Limit() == 4 && floorAt < 0 {
			floorAt = i
		}
		if floorAt >= 0 && i-floorAt > stuckWindows {
			t.Fatalf("window %d: no probe %d windows after reaching the floor", i, i-floorAt)
		}
	}
	if floorAt < 0 {
		t.Fatal("probe before the floor")
	}
	if got := h.probe(30 * ms); got != 3 {
		t.Fatalf("the probe admitted %d at once, want MinLimit 3", got)
	}
	if got := h.baseline(); got != 30*ms {
		t.Fatalf("baseline %v after the probe, want the new latency 30ms", got)
	}
	if got := h.l.Limit(); got != 4 {
		t.Fatalf("limit %d after the probe, want the floor it had before it", got)
	}
	limits := h.windows(300, all, 30*ms, true)
	if got := limits[len(limits)-1]; got < 100 {
		t.Fatalf("limit %d 300 windows after the baseline was relearned, want growth again", got)
	}
}

func TestOwnQueueIsNotLearned(t *testing.T) {
	h := started(t, Options{MinRTTInterval: time.Hour}, 10*ms)
	h.windows(50, all, 10*ms, true)
	// 1.7x the baseline with the limit reached: the queue the limit lets build up at
	// equilibrium. Between probes nothing raises the baseline.
	h.windows(2000, all, 17*ms, true)
	if got := h.baseline(); got != 10*ms {
		t.Fatalf("baseline %v after the limiter's own queue, want 10ms", got)
	}
}

func TestSpikeRecovery(t *testing.T) {
	h := started(t, Options{MaxLimit: 100, MinRTTInterval: time.Hour}, 10*ms)
	h.windows(100, all, 10*ms, true)
	if h.l.Limit() != 100 {
		t.Fatalf("limit %d before the spike, want 100", h.l.Limit())
	}
	// A lasting spike: shedding to the floor does not help, so a probe measures it.
	h.windows(150, all, 60*ms, true)
	if h.baseline() != 60*ms {
		t.Fatalf("baseline %v after a lasting spike, want 60ms", h.baseline())
	}
	floor := h.l.Limit()
	// Latency drops back: the first window below half the baseline starts a probe, without
	// waiting for MinRTTInterval.
	h.window(all, 10*ms, true)
	if !h.probing() {
		t.Fatalf("no probe after a window at a sixth of the baseline")
	}
	h.probe(10 * ms)
	if h.baseline() != 10*ms || h.l.Limit() != floor {
		t.Fatalf("baseline %v, limit %d after the probe; want 10ms and the limit %d before it",
			h.baseline(), h.l.Limit(), floor)
	}
	limits := h.windows(200, all, 10*ms, true)
	if got := limits[len(limits)-1]; got != 100 {
		t.Errorf("limit %d 200 windows after the spike, want back at 100", got)
	}
}

func TestDropsShrinkLimit(t *testing.T) {
	h := started(t, Options{MaxLimit: 100}, 10*ms)
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
	h := started(t, Options{MaxLimit: 100}, 10*ms)
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
	if h.baseline() != 10*ms {
		t.Fatalf("baseline %v, want 10ms: a drop's RTT is not sampled", h.baseline())
	}
}

func TestMinMaxLimit(t *testing.T) {
	h := started(t, Options{InitialLimit: 10, MinLimit: 5, MaxLimit: 30, MinRTTInterval: time.Hour},
		10*ms)
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
	h := started(t, Options{}, 10*ms)
	h.l.window.reset(h.clock.Now()) // drop the releases after the end of the probe
	release := func(n int, rtt time.Duration) {
		for range n {
			tok, _ := h.l.Acquire()
			h.l.Release(tok, rtt, true)
		}
	}
	h.clock.Advance(time.Second)
	release(9, 10*ms) // due, but one sample short
	if h.l.window.samples != 9 {
		t.Fatal("a window with fewer than MinSamples outcomes closed")
	}
	h.clock.Advance(time.Second)
	release(1, 140*ms)
	if h.l.window.samples != 0 {
		t.Fatal("the merged window did not close at MinSamples outcomes")
	}
	// The merged window's short RTT is the mean 23ms: a gradient of 1.5*10/23.
	next := 20*(1.5*10/23.0) + math.Sqrt(20)
	if got, want := h.l.gradient.limit, 20*0.8+next*0.2; math.Abs(got-want) > 1e-9 {
		t.Fatalf("limit %v after the merged window, want %v from its mean RTT 23ms", got, want)
	}
	release(20, 10*ms) // not due: the next window started at the close
	if h.l.window.samples != 20 {
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
	// Documented: under overload the limit settles with short/baseline = Tolerance/(1-1/sqrt(limit)).
	g := newGradient(New(Options{}).opts)
	g.baseline = float64(10 * ms)
	g.limit = 100
	short := g.tolerance * g.baseline / (1 - 1/math.Sqrt(g.limit))
	if next := g.next(short); math.Abs(next-g.limit) > 1e-9 {
		t.Fatalf("next %v at the equilibrium ratio, want %v", next, g.limit)
	}
}
