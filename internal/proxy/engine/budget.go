package engine

import (
	"sync/atomic"
	"time"
)

// budgetWindow is how far back a retry budget looks, in one-second buckets.
const budgetWindow = 10

// retryBudget lets retries add at most a percentage to the request rate, with a floor of retries
// per second that is always allowed. Counts live in one-second buckets over the last 10 seconds;
// updates are lock-free and approximate at bucket boundaries, which a budget can afford.
type retryBudget struct {
	percent   float64
	minPerSec float64
	now       func() time.Time
	buckets   [budgetWindow]budgetBucket
}

type budgetBucket struct {
	sec     atomic.Int64
	reqs    atomic.Int64
	retries atomic.Int64
}

func newRetryBudget(percent, minPerSec float64) *retryBudget {
	return &retryBudget{percent: percent, minPerSec: minPerSec, now: time.Now}
}

// bucket returns the bucket of second sec, clearing it when it last held an older second.
func (b *retryBudget) bucket(sec int64) *budgetBucket {
	bk := &b.buckets[sec%budgetWindow]
	if old := bk.sec.Load(); old != sec && bk.sec.CompareAndSwap(old, sec) {
		bk.reqs.Store(0)
		bk.retries.Store(0)
	}
	return bk
}

// request counts one request.
func (b *retryBudget) request() { b.bucket(b.now().Unix()).reqs.Add(1) }

// tryRetry takes a retry from the budget, or reports that none is left.
func (b *retryBudget) tryRetry() bool {
	sec := b.now().Unix()
	var reqs, retries int64
	for i := range b.buckets {
		bk := &b.buckets[i]
		if s := bk.sec.Load(); s > sec-budgetWindow && s <= sec {
			reqs += bk.reqs.Load()
			retries += bk.retries.Load()
		}
	}
	allowed := max(b.minPerSec*budgetWindow, b.percent/100*float64(reqs))
	if float64(retries) >= allowed {
		return false
	}
	b.bucket(sec).retries.Add(1)
	return true
}
