package adaptive

import "math"

const (
	minGradient = 0.5 // the smallest gradient: one window shrinks the limit by at most half
	dropFactor  = 0.9 // the limit's factor after a window with drops

	// shrinkFloor is the limit the smallest gradient settles at for its queue allowance: the L
	// with L = L*minGradient + sqrt(L). The gradient alone cannot take the limit below it.
	shrinkFloor = 1 / ((1 - minGradient) * (1 - minGradient))

	// stuckWindows is the number of windows in a row at the floor with the short RTT beyond
	// tolerance after which the baseline is probed afresh.
	stuckWindows = 5
	// fasterRatio is the ratio of the baseline to a window's short RTT beyond which the backend
	// got faster and the baseline is probed afresh.
	fasterRatio = 2
)

// gradient computes the limit from the sample windows: the estimated limit, fractional between
// windows, and the baseline RTT it measures the windows against.
type gradient struct {
	limit                float64
	minLimit, maxLimit   float64
	tolerance, smoothing float64
	baseline             float64 // nanoseconds; set by the probes, 0 before the first one
	stuck                int     // consecutive windows at the floor and beyond tolerance
}

func newGradient(o Options) gradient {
	return gradient{
		limit:     float64(o.InitialLimit),
		minLimit:  float64(o.MinLimit),
		maxLimit:  float64(o.MaxLimit),
		tolerance: o.Tolerance,
		smoothing: o.Smoothing,
	}
}

// update closes window w and updates the limit. It reports whether the baseline needs probing
// afresh: the limit has sat at the floor with the short RTT beyond tolerance for stuckWindows
// windows (shedding did not bring the latency back: the backend itself got slower), or the
// window's short RTT is below the baseline by fasterRatio (the backend got faster; even with a
// queue in it, a window's mean RTT is an upper bound of the backend's own).
func (g *gradient) update(w *window) (reprobe bool) {
	short := w.shortRTT()
	atFloor := g.limit < g.floor()+1
	switch {
	case w.drops > 0:
		g.limit *= dropFactor
	case short > 0 && g.baseline > 0:
		next := g.next(short)
		if float64(w.maxInFlight) < g.limit/2 {
			// App-limited: the load, not the backend, bounds the in-flight.
			next = min(next, g.limit)
		}
		g.limit = next
	}
	g.limit = min(max(g.limit, g.minLimit), g.maxLimit)
	if atFloor && short > g.tolerance*g.baseline {
		g.stuck++
	} else {
		g.stuck = 0
	}
	return g.stuck >= stuckWindows || short > 0 && short*fasterRatio < g.baseline
}

// floor returns the lowest limit the gradient can reach.
func (g *gradient) floor() float64 {
	return max(g.minLimit, shrinkFloor)
}

// next returns the limit the gradient asks for after a window whose mean RTT was short. Beyond
// twice the tolerance (the gradient at its floor) the queue is no noise of one window: the new
// limit is taken whole, not smoothed.
func (g *gradient) next(short float64) float64 {
	queue := max(1, math.Sqrt(g.limit))
	grad := g.tolerance * g.baseline / short
	if grad <= minGradient {
		return g.limit*minGradient + queue
	}
	next := g.limit*min(grad, 1) + queue
	return g.limit*(1-g.smoothing) + next*g.smoothing
}
