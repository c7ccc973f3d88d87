package lb

import (
	"sync"
	"sync/atomic"
)

// Limits of the precomputed round-robin schedule. One period of smooth weighted round robin is
// sum(weights) picks long (after dividing the weights by their GCD) and costs O(targets) per pick to
// compute, so schedules are precomputed only when both stay small.
const (
	maxSchedule     = 1 << 14 // longest precomputed period, in picks (64 KiB of indexes)
	maxScheduleWork = 1 << 22 // most target visits spent precomputing one period
)

// roundRobin replays a precomputed period of nginx's smooth weighted round robin. Concurrent picks
// share one atomic counter and no lock.
type roundRobin struct {
	next atomic.Uint64
	// schedule is one period of target indexes; nil when all weights are equal, and the period
	// is then 0, 1, ..., n-1.
	schedule []uint32
	n        uint64
}

// newRoundRobin returns the lock-free schedule when it is small enough and the live, locked
// algorithm otherwise.
func newRoundRobin(w []uint64) Balancer {
	if allEqual(w) {
		return &roundRobin{n: uint64(len(w))}
	}
	period := sum(w)
	if period > maxSchedule || period*uint64(len(w)) > maxScheduleWork {
		return newSmoothWRR(w)
	}
	s := newSmoothWRR(w)
	schedule := make([]uint32, period)
	for i := range schedule {
		schedule[i] = uint32(s.next())
	}
	return &roundRobin{schedule: schedule, n: period}
}

// Pick implements Balancer.
func (r *roundRobin) Pick(uint64, bool) int {
	i := (r.next.Add(1) - 1) % r.n
	if r.schedule == nil {
		return int(i)
	}
	return int(r.schedule[i])
}

// smoothWRR is nginx's smooth weighted round robin (ngx_http_upstream_get_peer): every pick adds
// each target's weight to its current value, picks the largest current value (the first on ties)
// and subtracts the total weight from it. It is the fallback for weight sums too large to
// precompute, and serialises picks with a mutex.
type smoothWRR struct {
	mu      sync.Mutex
	weight  []int64
	current []int64
	total   int64
}

func newSmoothWRR(w []uint64) *smoothWRR {
	s := &smoothWRR{weight: make([]int64, len(w)), current: make([]int64, len(w))}
	for i, x := range w {
		s.weight[i] = int64(x)
		s.total += int64(x)
	}
	return s
}

// next advances the algorithm by one pick. The caller holds mu or owns s exclusively.
func (s *smoothWRR) next() int {
	best := 0
	for i := range s.current {
		s.current[i] += s.weight[i]
		if s.current[i] > s.current[best] {
			best = i
		}
	}
	s.current[best] -= s.total
	return best
}

// Pick implements Balancer.
func (s *smoothWRR) Pick(uint64, bool) int {
	s.mu.Lock()
	i := s.next()
	s.mu.Unlock()
	return i
}
