package ratelimit

import (
	"fmt"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// Limiter is the compiled rate-limit policy of one route. Its buckets live as long as the
// Limiter, which a Store keeps across config reloads while the policy is unchanged. It is safe for
// concurrent use.
type Limiter struct {
	route       string
	fingerprint string
	store       *Store
	local       *localLimit
	global      *globalLimit
}

// localLimit is the local part of a Limiter: a token bucket per key in memory.
type localLimit struct {
	rule    rule
	buckets *slots
	policy  string // the RateLimit-Policy value
}

// newLocalLimit compiles l.
func newLocalLimit(l *config.LocalRateLimit) *localLimit {
	r := newRule(l.Rate, l.Burst)
	return &localLimit{rule: r, buckets: newSlots(newKeySpec(l.Key), l.MaxKeys), policy: policyField(&r)}
}

// Middleware returns the middleware that admits each request or answers it: 429 with reason
// "rate_limited" when a limit refuses it, 503 with reason "rate_limit_unavailable" when Redis
// cannot answer and the global limit does not fail open. An admitted request goes on to next,
// and the upstream's response carries the RateLimit-Policy and RateLimit fields.
func (l *Limiter) Middleware() proxy.Middleware {
	return func(next proxy.Handler) proxy.Handler {
		return proxy.HandlerFunc(func(x *proxy.Exchange) error {
			return l.serve(x, next)
		})
	}
}

// Serve runs x through l and hands it to next when admitted, for callers that choose the
// limiter per request (a consumer's plan).
func (l *Limiter) Serve(x *proxy.Exchange, next proxy.Handler) error { return l.serve(x, next) }

// serve decides x and answers it or hands it to next.
func (l *Limiter) serve(x *proxy.Exchange, next proxy.Handler) error {
	var (
		v      verdict
		policy string
		have   bool
	)
	var taken *slot // the local bucket x took a token from, to give back if the global limit refuses
	if lc := l.local; lc != nil {
		s := lc.buckets.get(x)
		now := l.store.clock()
		lv := s.take(&lc.rule, now)
		if !lv.admitted {
			// A request that lost the processor between reading the clock and taking its token
			// would be judged at a time that has passed: judge it again now.
			if fresh := l.store.clock(); fresh > now {
				lv = s.take(&lc.rule, fresh)
			}
		}
		if !lv.admitted {
			l.store.report(l.route, DecisionLimited)
			return l.reject(x, lc.policy, lv)
		}
		taken, v, policy, have = s, lv, lc.policy, true
	}
	decision := DecisionAdmitted
	if g := l.global; g != nil {
		gv, err := g.take(x, l.store.clock)
		switch {
		case err != nil && g.failOpen:
			decision = DecisionFailedOpen
		case err != nil:
			if taken != nil {
				taken.refund(&l.local.rule)
			}
			l.store.report(l.route, DecisionUnavailable)
			return proxy.Fail(503, ReasonRateLimitUnavailable, fmt.Errorf("ratelimit: route %q: %w", l.route, err))
		case !gv.admitted:
			if taken != nil {
				taken.refund(&l.local.rule)
			}
			l.store.report(l.route, DecisionLimited)
			return l.reject(x, g.policy, gv)
		case !have || gv.remaining <= v.remaining:
			v, policy, have = gv, g.policy, true
		}
	}
	l.store.report(l.route, decision)
	if have {
		state := stateField(v)
		x.ResponseEdits = append(x.ResponseEdits, func(r *httpmsg.Response) {
			r.Header.Set(headerPolicy, policy)
			r.Header.Set(headerState, state)
		})
	}
	return next.Serve(x)
}

// reject answers x with 429 and the fields that say when to come back.
func (l *Limiter) reject(x *proxy.Exchange, policy string, v verdict) error {
	return proxy.Respond(x, 429, ReasonRateLimited, "text/plain; charset=utf-8", "429 "+ReasonRateLimited+"\n",
		rejectFields(policy, v)...)
}
