package adaptive

import "time"

// window gathers the outcomes of the requests released since it started.
type window struct {
	start       time.Time
	rttSum      time.Duration // sum of the sampled RTTs
	samples     int           // sampled RTTs
	drops       int           // requests released with ok=false
	maxInFlight int64         // most requests in flight seen at the admission of a released request
}

// reset empties the window and starts it at now.
func (w *window) reset(now time.Time) {
	*w = window{start: now}
}

// record adds one released request: admitted with inFlight requests in flight, done after rtt,
// successful when ok. Non-positive RTTs are not sampled.
func (w *window) record(inFlight int64, rtt time.Duration, ok bool) {
	w.maxInFlight = max(w.maxInFlight, inFlight)
	switch {
	case !ok:
		w.drops++
	case rtt > 0:
		w.rttSum += rtt
		w.samples++
	}
}

// ready reports whether the window has lasted length and holds at least minSamples outcomes; a
// window that is due but too thin keeps gathering, which merges it into the next.
func (w *window) ready(now time.Time, length time.Duration, minSamples int) bool {
	return now.Sub(w.start) >= length && w.samples+w.drops >= minSamples
}

// shortRTT returns the mean sampled RTT in nanoseconds, or 0 without samples.
func (w *window) shortRTT() float64 {
	if w.samples == 0 {
		return 0
	}
	return float64(w.rttSum) / float64(w.samples)
}
