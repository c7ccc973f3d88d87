package adaptive

import (
	"testing"
	"time"
)

func TestProbeAtStart(t *testing.T) {
	h := newHarness(t, Options{InitialLimit: 50})
	if !h.probing() || h.l.Limit() != 3 {
		t.Fatalf("probing %v, limit %d at the start; want a probe at MinLimit 3",
			h.probing(), h.l.Limit())
	}
	// RTTs 1ms..25ms, three at a time, the requests beyond MinLimit refused.
	for i := 0; i < 25; {
		var tokens []Token
		for range 5 {
			if tok, ok := h.l.Acquire(); ok {
				tokens = append(tokens, tok)
			}
		}
		if len(tokens) != 3 {
			t.Fatalf("%d admitted at once during the probe, want MinLimit 3", len(tokens))
		}
		for _, tok := range tokens {
			if i++; i <= 25 {
				h.l.Release(tok, time.Duration(26-i)*ms, true)
			} else {
				h.l.Release(tok, time.Second, true) // after the probe: a window's
			}
		}
	}
	if h.probing() {
		t.Fatal("the probe did not end at ProbeSamples RTTs")
	}
	if got := h.baseline(); got != 13*ms {
		t.Fatalf("baseline %v, want the median 13ms", got)
	}
	if got := h.l.Limit(); got != 50 {
		t.Fatalf("limit %d after the first probe, want InitialLimit 50", got)
	}
}

func TestPeriodicProbeRestoresLimit(t *testing.T) {
	const interval = 10 * time.Second
	h := started(t, Options{MinRTTInterval: interval}, 10*ms)
	for round := range 3 {
		ended := h.clock.Now()
		var before int
		for !h.probing() {
			before = h.l.Limit()
			// 1.4x the baseline: within tolerance, so the limit keeps growing, and only a
			// probe learns that the backend got slower.
			h.window(all, 14*ms, true)
		}
		since := h.clock.Now().Sub(ended)
		// The probe starts at the first window to close after the interval and its jitter.
		if since < interval || since > interval*115/100+h.l.opts.SampleWindow {
			t.Fatalf("round %d: probe %v after the previous one, want %v plus up to 15%%",
				round, since, interval)
		}
		if h.l.Limit() != 3 {
			t.Fatalf("round %d: limit %d during the probe, want MinLimit 3", round, h.l.Limit())
		}
		restore := int(h.l.probe.restore)
		if restore < before || restore <= 20 {
			t.Fatalf("round %d: the probe saved the limit %d, want the %d in force before it",
				round, restore, before)
		}
		h.probe(14 * ms)
		if got := h.l.Limit(); got != restore {
			t.Fatalf("round %d: limit %d after the probe, want %d restored", round, got, restore)
		}
		if got := h.baseline(); got != 14*ms {
			t.Fatalf("round %d: baseline %v after the probe, want 14ms", round, got)
		}
		t.Logf("round %d: probe after %v, limit %d restored", round, since, restore)
	}
}

func TestProbeIgnoresQueuedRequests(t *testing.T) {
	h := started(t, Options{MinRTTInterval: 10 * time.Second}, 10*ms)
	// 20 requests in flight, admitted before the probe: their RTTs hold a queue.
	var old []Token
	for range 20 {
		tok, ok := h.l.Acquire()
		if !ok {
			t.Fatal("refused below the limit")
		}
		old = append(old, tok)
	}
	h.clock.Advance(12 * time.Second)
	h.l.Release(old[0], 100*ms, true) // due: starts the probe
	if !h.probing() {
		t.Fatal("no probe after MinRTTInterval and its jitter")
	}
	if _, ok := h.l.Acquire(); ok {
		t.Fatal("admitted during the probe with more than MinLimit in flight")
	}
	for _, tok := range old[1:] {
		h.l.Release(tok, 100*ms, true)
	}
	if n := len(h.l.probe.rtts); n != 0 {
		t.Fatalf("the probe gathered %d RTTs of requests admitted before it", n)
	}
	h.probe(11 * ms)
	if got := h.baseline(); got != 11*ms {
		t.Fatalf("baseline %v, want 11ms: the queued RTTs left out", got)
	}
}

func TestProbeBound(t *testing.T) {
	// Thin traffic: one request at a time. The bound is 2*100ms*25 = 5s.
	h := newHarness(t, Options{MinRTTInterval: 10 * time.Second})
	one := func(rtt, after time.Duration) {
		t.Helper()
		tok, ok := h.l.Acquire()
		if !ok {
			t.Fatal("refused with nothing in flight")
		}
		h.clock.Advance(after)
		h.l.Release(tok, rtt, true)
	}
	// The first probe's bound counts from its first release, not from New.
	h.clock.Advance(time.Minute)
	for i := range 5 {
		one(time.Duration(10+i)*ms, 100*ms)
	}
	if !h.probing() {
		t.Fatal("the first probe ended before its bound")
	}
	one(20*ms, 5*time.Second)
	if h.probing() || h.baseline() != 12*ms || h.l.Limit() != 20 {
		t.Fatalf("probing %v, baseline %v, limit %d after 6 RTTs beyond the bound; "+
			"want the probe ended, the median 12ms, InitialLimit 20",
			h.probing(), h.baseline(), h.l.Limit())
	}

	// A periodic probe with fewer than minProbeSamples RTTs in its bound keeps the baseline
	// and restores the limit.
	h.clock.Advance(12 * time.Second)
	one(10*ms, 0) // starts the probe
	if !h.probing() {
		t.Fatal("no probe after MinRTTInterval and its jitter")
	}
	one(40*ms, 4*time.Second)
	one(40*ms, 2*time.Second) // beyond the bound, with 2 RTTs
	if h.probing() || h.baseline() != 12*ms || h.l.Limit() != 20 {
		t.Fatalf("probing %v, baseline %v, limit %d; want the probe ended, 12ms kept, limit 20",
			h.probing(), h.baseline(), h.l.Limit())
	}

	// The first probe has no baseline to keep: it waits for minProbeSamples RTTs, however long.
	h = newHarness(t, Options{})
	for i := range minProbeSamples {
		if !h.probing() {
			t.Fatalf("the first probe ended after %d RTTs", i)
		}
		one(30*ms, 10*time.Second)
	}
	if h.probing() || h.baseline() != 30*ms {
		t.Fatalf("probing %v, baseline %v after %d RTTs beyond the bound; want it ended, 30ms",
			h.probing(), h.baseline(), minProbeSamples)
	}
}
