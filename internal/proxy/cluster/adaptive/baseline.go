package adaptive

const (
	warmupWindows = 10   // windows averaged plainly before the baseline turns exponential
	recoverRatio  = 2    // baseline/short RTT ratio beyond which the baseline decays
	recoverFactor = 0.95 // the baseline's factor per window while it decays
)

// baseline is the long-term RTT: the estimate of the backend's latency without a queue of this
// limiter's making, which each window's mean RTT is compared with. See the package doc for which
// windows it learns from.
type baseline struct {
	rtt     float64 // nanoseconds; 0 before the first window
	windows int     // windows averaged since learning (re)started, up to warmupWindows
	stuck   int     // consecutive windows at the floor and beyond tolerance
	alpha   float64 // a window's weight once warm
}

// warm reports whether the baseline has averaged its first warmupWindows windows.
func (b *baseline) warm() bool {
	return b.windows >= warmupWindows
}

// observe takes the mean RTT short of a window. within reports short within tolerance of the
// baseline, saturated that the window's in-flight reached the limit, atFloor that the limit is as
// low as the gradient takes it.
func (b *baseline) observe(short float64, within, saturated, atFloor bool) {
	if b.warm() && atFloor && !within {
		// Shedding down to the floor did not bring the latency back: the backend itself got
		// slower. Learn the baseline again, from windows at the floor.
		if b.stuck++; b.stuck >= warmupWindows {
			b.windows, b.stuck = 0, 0
		}
	} else {
		b.stuck = 0
	}
	switch {
	case !b.warm():
		b.windows++
		b.rtt += (short - b.rtt) / float64(b.windows)
	case short <= b.rtt && saturated:
		b.rtt += (short - b.rtt) / warmupWindows
	case short <= b.rtt, within && !saturated:
		b.rtt += (short - b.rtt) * b.alpha
	}
	if b.rtt/short > recoverRatio {
		b.rtt *= recoverFactor
	}
}
