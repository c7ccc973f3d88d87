package adaptive

import (
	"math/rand/v2"
	"slices"
	"time"
)

const (
	probeJitter      = 0.15 // the most a probe interval is lengthened by, as a fraction of it
	probePercentile  = 0.5  // the percentile of a probe's RTTs taken as the baseline
	minProbeSamples  = 5    // the fewest RTTs a probe cut short by its bound takes a baseline from
	probeBoundFactor = 2    // a probe lasts at most probeBoundFactor*SampleWindow*ProbeSamples
)

// probe measures the baseline: the backend's latency when this limiter makes no queue. While
// it is active the limit is pinned to MinLimit, and the RTTs of the requests admitted with at
// most MinLimit in flight since it began are gathered. See the package doc.
type probe struct {
	active  bool
	start   time.Time       // when it began gathering; zero until the first release of the first probe
	rtts    []time.Duration // the RTTs gathered, at most ProbeSamples
	restore float64         // the limit in force before it began, restored when it ends
	next    time.Time       // when the next probe is due
	rng     *rand.Rand      // draws the jitter of the intervals between probes
}

// startProbe pins the limit to MinLimit and begins a probe at now.
func (l *Limiter) startProbe(now time.Time) {
	p := &l.probe
	p.active = true
	p.start = now
	p.rtts = p.rtts[:0]
	p.restore = l.gradient.limit
	l.gen.Add(1) // the tokens admitted from here on belong to this probe
	l.limit.Store(int64(l.opts.MinLimit))
}

// releaseProbing takes a request released at now during a probe: its RTT is gathered if it was
// admitted since the probe began with at most MinLimit in flight and succeeded. The probe ends
// once it has ProbeSamples RTTs, or when it has lasted its bound with at least minProbeSamples
// of them (or with a baseline from an earlier probe to keep).
func (l *Limiter) releaseProbing(t Token, rtt time.Duration, ok bool, now time.Time) {
	p := &l.probe
	if p.start.IsZero() {
		p.start = now
	}
	if ok && rtt > 0 && t.gen == l.gen.Load() && t.inFlight <= int64(l.opts.MinLimit) {
		p.rtts = append(p.rtts, rtt)
	}
	n := len(p.rtts)
	enough := min(minProbeSamples, l.opts.ProbeSamples)
	bound := probeBoundFactor * l.opts.SampleWindow * time.Duration(l.opts.ProbeSamples)
	switch {
	case n >= l.opts.ProbeSamples:
	case now.Sub(p.start) >= bound && (n >= enough || l.gradient.baseline > 0):
	default:
		return
	}
	if n >= enough {
		slices.Sort(p.rtts)
		l.gradient.baseline = float64(p.rtts[int(probePercentile*float64(n-1))])
	}
	p.active = false
	l.gradient.limit = p.restore
	l.gradient.stuck = 0
	l.limit.Store(int64(l.gradient.limit))
	interval := float64(l.opts.MinRTTInterval) * (1 + probeJitter*p.rng.Float64())
	p.next = now.Add(time.Duration(interval))
	l.window.reset(now)
}
