package ratelimit

import (
	"math"
	"sync/atomic"
	"time"
)

// maxAhead bounds how far (in nanoseconds) a theoretical arrival time may run ahead of the clock,
// so that sums of times never overflow.
const maxAhead = int64(1) << 61

// rule is a rate and a burst in the units the bucket arithmetic uses.
type rule struct {
	// interval is the time in nanoseconds between two tokens: 1/rate, at least 1ns.
	interval int64
	// limit is how far the theoretical arrival time may run ahead of now after a request is
	// admitted: burst × interval.
	limit int64
	// burst is the bucket's capacity in tokens.
	burst int64
}

// newRule returns the rule of rate tokens per second and a bucket of burst tokens (at least 1).
// The interval is rounded to the nanosecond and bounded so that limit stays below maxAhead.
func newRule(rate float64, burst int) rule {
	b := int64(max(burst, 1))
	iv := math.Round(float64(time.Second) / rate)
	if iv < 1 {
		iv = 1
	}
	if maxIv := float64(maxAhead / b); iv > maxIv || math.IsNaN(iv) {
		iv = maxIv
	}
	r := rule{interval: int64(iv), burst: b}
	r.limit = r.interval * b
	return r
}

// verdict is the outcome of one request against one bucket.
type verdict struct {
	// admitted reports that the request took a token.
	admitted bool
	// remaining is the number of whole tokens left after the request.
	remaining int64
	// wait is, for a refused request, how long until the next request will be admitted.
	wait time.Duration
	// reset is how long until the bucket is full again.
	reset time.Duration
}

// slot is the state of one key: a bucket's theoretical arrival time (TAT) in nanoseconds on the
// store's monotonic clock, or the deny cache's "refused until" time. Its zero value is a full
// bucket.
type slot struct {
	v atomic.Int64
	// ref is the CLOCK reference bit of the table that holds the slot: set when the slot is used,
	// cleared when the eviction hand passes.
	ref atomic.Bool
}

// take runs one request against the bucket in s at time now (nanoseconds). A bucket of burst B
// refilled every interval T admits the request when, after it, the TAT would be at most B×T ahead
// of now; the TAT then moves one interval on. This is exactly a token bucket with B tokens.
func (s *slot) take(r *rule, now int64) verdict {
	for {
		tat := s.v.Load()
		next := max(tat, now) + r.interval
		ahead := next - now
		if ahead > r.limit {
			return verdict{wait: time.Duration(ahead - r.limit), reset: time.Duration(max(tat-now, 0))}
		}
		if s.v.CompareAndSwap(tat, next) {
			return verdict{admitted: true, remaining: (r.limit - ahead) / r.interval, reset: time.Duration(ahead)}
		}
	}
}

// refund gives back the token an admitted take took, when a later limit refused the request.
func (s *slot) refund(r *rule) {
	s.v.Add(-r.interval)
}
