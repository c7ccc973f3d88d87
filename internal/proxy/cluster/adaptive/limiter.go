package adaptive

import (
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Limiter. Zero fields take the documented defaults.
type Options struct {
	// InitialLimit is the concurrency limit before the first window is measured; default 20.
	InitialLimit int
	// MinLimit is the floor of the limit; default 3. It is at least 1.
	MinLimit int
	// MaxLimit is the ceiling of the limit; default 1000. It is at least MinLimit.
	MaxLimit int
	// SampleWindow is how often the limit is recomputed from the samples gathered; default 100ms.
	SampleWindow time.Duration
	// MinSamples is the fewest outcomes (sampled RTTs plus drops) a window needs; a window with
	// fewer is merged into the next; default 10.
	MinSamples int
	// Tolerance is the ratio of short to long RTT tolerated before the limit shrinks (Gradient2's
	// rttTolerance); default 1.5. Values below 1 are raised to 1.
	Tolerance float64
	// Smoothing is the weight, in (0, 1], of a newly computed limit against the current one;
	// default 0.2.
	Smoothing float64
	// LongWindow is the number of windows the long-term RTT average spans; default 600.
	LongWindow int
	// Now reads the clock; default time.Now. Tests set it to drive time.
	Now func() time.Time
}

// The values Options take for zero fields.
const (
	DefaultInitialLimit = 20
	DefaultMinLimit     = 3
	DefaultMaxLimit     = 1000
	DefaultSampleWindow = 100 * time.Millisecond
	DefaultMinSamples   = 10
	DefaultTolerance    = 1.5
	DefaultSmoothing    = 0.2
	DefaultLongWindow   = 600
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
	if o.LongWindow <= 0 {
		o.LongWindow = DefaultLongWindow
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
	limit    atomic.Int64 // the integer part of gradient.limit, for Acquire

	mu       sync.Mutex // guards window and gradient
	window   window
	gradient gradient
}

// Token is an admitted request's hold on a Limiter; give it back to Release exactly once.
type Token struct {
	inFlight int64 // requests in flight, this one included, when it was admitted; 0: not admitted
}

// New returns a Limiter configured by o.
func New(o Options) *Limiter {
	o = o.withDefaults()
	l := &Limiter{opts: o}
	l.gradient = newGradient(o)
	l.limit.Store(int64(o.InitialLimit))
	l.window.reset(o.Now())
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
			return Token{inFlight: n + 1}, true
		}
	}
}

// Release gives back the token of a finished request. ok reports success: the request's rtt is
// sampled. A request that failed locally (a timeout or reset) passes ok=false: its rtt is not
// sampled and it counts as a drop, which shrinks the limit at the end of the window. A zero Token
// is ignored.
func (l *Limiter) Release(t Token, rtt time.Duration, ok bool) {
	if t.inFlight == 0 {
		return
	}
	l.inFlight.Add(-1)
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.window.record(t.inFlight, rtt, ok)
	if !l.window.ready(now, l.opts.SampleWindow, l.opts.MinSamples) {
		return
	}
	l.limit.Store(int64(l.gradient.update(&l.window)))
	l.window.reset(now)
}

// Limit returns the current concurrency limit.
func (l *Limiter) Limit() int {
	return int(l.limit.Load())
}

// InFlight returns the number of requests admitted and not yet released.
func (l *Limiter) InFlight() int {
	return int(l.inFlight.Load())
}
