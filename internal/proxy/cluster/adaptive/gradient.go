package adaptive

import "math"

const (
	minGradient = 0.5 // the smallest gradient: one window shrinks the limit by at most half
	dropFactor  = 0.9 // the limit's factor after a window with drops

	// shrinkFloor is the limit the smallest gradient settles at for its queue allowance: the L
	// with L = L*minGradient + sqrt(L). The gradient alone cannot take the limit below it.
	shrinkFloor = 1 / ((1 - minGradient) * (1 - minGradient))
)

// gradient computes the limit from the sample windows: the estimated limit, fractional between
// windows, and the long-term RTT it measures the windows against.
type gradient struct {
	limit                float64
	minLimit, maxLimit   float64
	tolerance, smoothing float64
	long                 baseline
}

func newGradient(o Options) gradient {
	return gradient{
		limit:     float64(o.InitialLimit),
		minLimit:  float64(o.MinLimit),
		maxLimit:  float64(o.MaxLimit),
		tolerance: o.Tolerance,
		smoothing: o.Smoothing,
		long:      baseline{alpha: 2 / (float64(o.LongWindow) + 1)},
	}
}

// update closes window w and returns the new limit.
func (g *gradient) update(w *window) float64 {
	short := w.shortRTT()
	warm := g.long.warm() // the long RTT was learned before this window
	if short > 0 {
		within := short <= g.tolerance*g.long.rtt
		saturated := float64(w.maxInFlight) >= math.Floor(g.limit)
		atFloor := g.limit < g.floor()+1
		g.long.observe(short, within, saturated, atFloor)
	}
	warm = warm && g.long.warm() // and is not being learned afresh
	switch {
	case w.drops > 0:
		g.limit *= dropFactor
	case short > 0:
		next := g.next(short)
		if !warm || float64(w.maxInFlight) < g.limit/2 {
			// Warming up, or app-limited: the load, not the backend, bounds the in-flight.
			next = min(next, g.limit)
		}
		g.limit = next
	}
	g.limit = min(max(g.limit, g.minLimit), g.maxLimit)
	return g.limit
}

// floor returns the lowest limit the gradient can reach.
func (g *gradient) floor() float64 {
	return max(g.minLimit, shrinkFloor)
}

// next returns the limit the gradient asks for after a window whose mean RTT was short.
func (g *gradient) next(short float64) float64 {
	queue := max(1, math.Sqrt(g.limit))
	grad := min(max(g.tolerance*g.long.rtt/short, minGradient), 1)
	next := g.limit*grad + queue
	return g.limit*(1-g.smoothing) + next*g.smoothing
}
