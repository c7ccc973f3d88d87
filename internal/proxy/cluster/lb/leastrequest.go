package lb

import "sync/atomic"

// leastRequest is the power of two random choices: it samples two distinct targets, in proportion
// to their weights (without replacement), and sends the request to the one with fewer requests in flight (the first
// sampled on ties). With no load the traffic split follows the weights exactly; under load the
// in-flight counts steer traffic away from slow or saturated targets.
type leastRequest struct {
	inflight []*atomic.Int64
	choice   weightedChoice
}

func newLeastRequest(targets []Target, w []uint64) *leastRequest {
	l := &leastRequest{inflight: make([]*atomic.Int64, len(targets)), choice: newWeightedChoice(w)}
	for i := range targets {
		l.inflight[i] = targets[i].Inflight
	}
	return l
}

// Pick implements Balancer.
func (l *leastRequest) Pick(uint64, bool) int {
	a := l.choice.draw()
	b := l.choice.drawExcept(a)
	if l.inflight[b].Load() < l.inflight[a].Load() {
		return b
	}
	return a
}
