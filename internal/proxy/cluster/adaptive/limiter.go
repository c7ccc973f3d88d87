package adaptive

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Limiter. Zero fields take the documented defaults.
type Options struct {
	// InitialLimit is the concurrency limit once the first probe has measured the baseline
	// latency (the limit is MinLimit during it); default 20.
	InitialLimit int
	// MinLimit is the floor of the limit and the concurrency the probes measure the baseline
	// latency at; default 3. It is at least 1. It should be below what the backend serves at
	// once, or the probes measure a queue.
	MinLimit int
	// MaxLimit is the ceiling of the limit; default 1000. It is at least MinLimit.
	MaxLimit int
	// SampleWindow is how often the limit is recomputed from the samples gathered; default 100ms.
	SampleWindow time.Duration
	// MinSamples is the fewest outcomes (sampled RTTs plus drops) a window needs; a window with
	// fewer is merged into the next; default 10.
	MinSamples int
	// Tolerance is the ratio of a window's mean RTT to the baseline latency tolerated before the
	// limit shrinks (Gradient2's rttTolerance); default 1.5. Values below 1 are raised to 1.
	Tolerance float64
	// Smoothing is the weight, in (0, 1], of a newly computed limit against the current one;
	// default 0.2.
	Smoothing float64
	// MinRTTInterval is how often the baseline latency is measured afresh by a probe, which
	// pins the limit to MinLimit and refuses the requests beyond it until it has ProbeSamples
	// RTTs. Each interval is lengthened by a random jitter of up to 15%, so that limiters started
	// together do not probe together. Default 30s.
	MinRTTInterval time.Duration
	// ProbeSamples is the number of RTTs a probe gathers before it takes their median as the
	// baseline latency; default 25. A probe that cannot gather them within
	// 2*SampleWindow*ProbeSamples ends with what it has.
	ProbeSamples int
	// Now reads the clock; default time.Now. Tests set it to drive time.
	Now func() time.Time
}

// The values Options take for zero fields.
const (
	DefaultInitialLimit   = 20
	DefaultMinLimit       = 3
	DefaultMaxLimit       = 1000
	DefaultSampleWindow   = 100 * time.Millisecond
	DefaultMinSamples     = 10
	DefaultTolerance      = 1.5
	DefaultSmoothing      = 0.2
	DefaultMinRTTInterval = 30 * time.Second
	DefaultProbeSamples   = 25
)

// withDefaults returns o with zero and out-of-range fields replaced.
func (o Options) withDefaults() Options {
	if o.MinLimit <= 0 {
		o.MinLimit = DefaultMinLimit
	}
	if o.MaxLimit <= 0 {
		o.MaxLimit = DefaultMaxLimit
	}
	o.MaxLimit = max(o.MaxLimit, o.MinLimit)
	if o.InitialLimit <= 0 {
		o.InitialLimit = DefaultInitialLimit
	}
	o.InitialLimit = min(max(o.InitialLimit, o.MinLimit), o.MaxLimit)
	if o.SampleWindow <= 0 {
		o.SampleWindow = DefaultSampleWindow
	}
	if o.MinSamples <= 0 {
		o.MinSamples = DefaultMinSamples
	}
	if o.Tolerance <= 0 {
		o.Tolerance = DefaultTolerance
	}
	o.Tolerance = max(o.Tolerance, 1)
	if o.Smoothing <= 0 || o.Smoothing > 1 {
		o.Smoothing = DefaultSmoothing
	}
	if o.MinRTTInterval <= 0 {
		o.MinRTTInterval = DefaultMinRTTInterval
	}
	if o.ProbeSamples <= 0 {
		o.ProbeSamples = DefaultProbeSamples
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Limiter bounds the requests in flight to a backend by a limit it adapts to observed latency.
// Acquire and Release are safe for concurrent use; Acquire takes no lock.
type Limiter struct {
	opts Options

	inFlight atomic.Int64
	limit    atomic.Int64  // the integer part of gradient.limit, or MinLimit during a probe
	gen      atomic.Uint64 // the number of probes begun: tokens carry it, so a probe knows its own

	mu       sync.Mutex // guards window, gradient and probe
	window   window
	gradient gradient
	probe    probe
}

// Token is an admitted request's hold on a Limiter; give it back to Release exactly once.
type Token struct {
	inFlight int64  // requests in flight, this one included, when it was admitted; 0: not admitted
	gen      uint64 // the probes begun when it was admitted
}

// New returns a Limiter configured by o. It begins with a probe of the baseline latency: its
// limit is MinLimit until the probe ends, and InitialLimit then.
func New(o Options) *Limiter {
	o = o.withDefaults()
	now := o.Now()
	l := &Limiter{opts: o}
	l.gradient = newGradient(o)
	l.probe.rtts = make([]time.Duration, 0, o.ProbeSamples)
	l.probe.rng = rand.New(rand.NewPCG(uint64(now.UnixNano()), 0x9e3779b97f4a7c15))
	l.window.reset(now)
	// The first probe's bound counts from its first release, not from the limiter's creation.
	l.startProbe(time.Time{})
	return l
}

// Acquire admits a request when fewer than Limit requests are in flight and returns its token.
// It returns false when the limit is reached: the caller sheds the request (503,
// concurrency_limited) and has nothing to release.
func (l *Limiter) Acquire() (Token, bool) {
	for {
		n := l.inFlight.Load()
		if n >= l.limit.Load() {
			return Token{}, false
		}
		if l.inFlight.CompareAndSwap(n, n+1) {
			return Token{inFlight: n + 1, gen: l.gen.Load()}, true
		}
	}
}

// Release gives back the token of a finished request. ok reports success: the request's rtt is
// sampled. A request that failed locally (a timeout or reset) passes ok=false: its rtt is not
// sampled and it counts as a drop, which shrinks the limit at the end of the window. A zero Token
// is ignored. During a probe a released request feeds the probe instead of a window.
func (l *Limiter) Release(t Token, rtt time.Duration, ok bool) {
	if t.inFlight == 0 {
		return
	}
	l.inFlight.Add(-1)
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.probe.active {
		l.releaseProbing(t, rtt, ok, now)
		return
	}
	l.window.record(t.inFlight, rtt, ok)
	if l.window.ready(now, l.opts.SampleWindow, l.opts.MinSamples) {
		reprobe := l.gradient.update(&l.window)
		l.window.reset(now)
		if reprobe {
			l.startProbe(now)
			return
		}
		l.limit.Store(int64(l.gradient.limit))
	}
	if !now.Before(l.probe.next) {
		l.startProbe(now)
	}
}

// Limit returns the current concurrency limit: MinLimit while a probe measures the baseline
// latency.
func (l *Limiter) Limit() int {
	return int(l.limit.Load())
}

// InFlight returns the number of requests admitted and not yet released.
func (l *Limiter) InFlight() int {
	return int(l.inFlight.Load())
}
