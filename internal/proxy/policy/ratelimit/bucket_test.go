package ratelimit

import (
	"math"
	"testing"
	"time"
)

// TestNewRule checks the conversion of a rate and burst to the bucket's units and its bounds.
func TestNewRule(t *testing.T) {
	tests := []struct {
		desc     string
		rate     float64
		burst    int
		interval int64
		limit    int64
	}{
		{desc: "10 per second", rate: 10, burst: 3, interval: 100e6, limit: 300e6},
		{desc: "a third per second", rate: 1.0 / 3, burst: 1, interval: 3e9, limit: 3e9},
		{desc: "interval rounds to the nanosecond", rate: 3, burst: 2, interval: 333333333, limit: 666666666},
		{desc: "burst at least 1", rate: 1, burst: 0, interval: 1e9, limit: 1e9},
		{desc: "interval at least 1ns", rate: 1e12, burst: 5, interval: 1, limit: 5},
		{desc: "limit bounded", rate: 1e-30, burst: 4, interval: maxAhead / 4, limit: maxAhead},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			r := newRule(tt.rate, tt.burst)
			if r.interval != tt.interval || r.limit != tt.limit || r.burst != int64(max(tt.burst, 1)) {
				t.Errorf("newRule(%v, %d) = %+v, want interval %d limit %d", tt.rate, tt.burst, r, tt.interval, tt.limit)
			}
		})
	}
}

// TestTokenBucket runs requests at set times against buckets and checks every verdict.
func TestTokenBucket(t *testing.T) {
	ms := func(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }
	type step struct {
		at        time.Duration // when the request arrives
		admitted  bool
		remaining int64
		wait      time.Duration
		reset     time.Duration
	}
	tests := []struct {
		desc  string
		rate  float64
		burst int
		steps []step
	}{
		{
			desc: "burst at once, then the rate", rate: 10, burst: 3,
			steps: []step{
				{at: 0, admitted: true, remaining: 2, reset: ms(100)},
				{at: 0, admitted: true, remaining: 1, reset: ms(200)},
				{at: 0, admitted: true, remaining: 0, reset: ms(300)},
				{at: 0, wait: ms(100), reset: ms(300)},
				{at: ms(50), wait: ms(50), reset: ms(250)},
				{at: ms(99), wait: ms(1), reset: ms(201)},
				{at: ms(100), admitted: true, remaining: 0, reset: ms(300)},
				{at: ms(150), wait: ms(50), reset: ms(250)},
				{at: ms(200), admitted: true, remaining: 0, reset: ms(300)},
				{at: ms(450), admitted: true, remaining: 1, reset: ms(150)},
				{at: ms(10000), admitted: true, remaining: 2, reset: ms(100)},
			},
		},
		{
			desc: "burst 1 at half a request per second", rate: 0.5, burst: 1,
			steps: []step{
				{at: 0, admitted: true, remaining: 0, reset: 2 * time.Second},
				{at: time.Second, wait: time.Second, reset: time.Second},
				{at: ms(1999), wait: ms(1), reset: ms(1)},
				{at: 2 * time.Second, admitted: true, remaining: 0, reset: 2 * time.Second},
			},
		},
		{
			desc: "refill is partial between tokens", rate: 4, burst: 4,
			steps: []step{
				{at: 0, admitted: true, remaining: 3, reset: ms(250)},
				{at: 0, admitted: true, remaining: 2, reset: ms(500)},
				{at: 0, admitted: true, remaining: 1, reset: ms(750)},
				{at: 0, admitted: true, remaining: 0, reset: ms(1000)},
				{at: ms(300), admitted: true, remaining: 0, reset: ms(950)},
				{at: ms(300), wait: ms(200), reset: ms(950)},
				{at: ms(1000), admitted: true, remaining: 2, reset: ms(500)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			r := newRule(tt.rate, tt.burst)
			var s slot
			for i, st := range tt.steps {
				got := s.take(&r, int64(st.at))
				want := verdict{admitted: st.admitted, remaining: st.remaining, wait: st.wait, reset: st.reset}
				if got != want {
					t.Errorf("step %d at %v: got %+v, want %+v", i, st.at, got, want)
				}
			}
		})
	}
}

// TestTokenBucketRefund checks that a refund gives back one token and never more than a full bucket.
func TestTokenBucketRefund(t *testing.T) {
	r := newRule(1, 2)
	var s slot
	for i := range 2 {
		if v := s.take(&r, 0); !v.admitted {
			t.Fatalf("request %d refused", i)
		}
	}
	if v := s.take(&r, 0); v.admitted {
		t.Fatal("third request admitted from a bucket of 2")
	}
	s.refund(&r)
	if v := s.take(&r, 0); !v.admitted || v.remaining != 0 {
		t.Fatalf("after a refund: %+v, want admitted with 0 left", v)
	}
	// A refund into a bucket that has refilled meanwhile does not make it hold more than burst.
	s.refund(&r)
	s.refund(&r)
	s.refund(&r)
	n := 0
	for range 10 {
		if s.take(&r, int64(10*time.Second)).admitted {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("a full bucket after refunds admitted %d at once, want 2", n)
	}
}

// TestTokenBucketRate runs a bucket over a long simulated span: it admits burst plus rate × span.
func TestTokenBucketRate(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		burst int
	}{{200, 20}, {7, 1}, {1000, 1000}, {0.25, 3}} {
		r := newRule(tc.rate, tc.burst)
		var s slot
		span := 20050 * time.Millisecond // not on a token boundary, where rounding the interval decides
		step := time.Millisecond
		admitted := 0
		for now := time.Duration(0); now <= span; now += step {
			for s.take(&r, int64(now)).admitted {
				admitted++
			}
		}
		want := tc.burst + int(math.Floor(tc.rate*span.Seconds()))
		if admitted != want {
			t.Errorf("rate %v burst %d over %v: admitted %d, want %d", tc.rate, tc.burst, span, admitted, want)
		}
	}
}

// TestHeaderFields checks the exact RateLimit-Policy, RateLimit and Retry-After values.
func TestHeaderFields(t *testing.T) {
	for _, tt := range []struct {
		rate  float64
		burst int
		want  string
	}{
		{100, 20, `"default";q=20;w=1`},
		{1, 10, `"default";q=10;w=10`},
		{0.5, 1, `"default";q=1;w=2`},
		{3, 10, `"default";q=10;w=4`},
	} {
		r := newRule(tt.rate, tt.burst)
		if got := policyField(&r); got != tt.want {
			t.Errorf("policyField(rate %v, burst %d) = %s, want %s", tt.rate, tt.burst, got, tt.want)
		}
	}
	for _, tt := range []struct {
		v          verdict
		state, ret string
	}{
		{verdict{remaining: 5, reset: 200 * time.Millisecond}, `"default";r=5;t=1`, "1"},
		{verdict{remaining: 0, reset: 2 * time.Second, wait: time.Nanosecond}, `"default";r=0;t=2`, "1"},
		{verdict{remaining: 0, reset: 2001 * time.Millisecond, wait: 1001 * time.Millisecond}, `"default";r=0;t=3`, "2"},
		{verdict{}, `"default";r=0;t=0`, "1"},
	} {
		if got := stateField(tt.v); got != tt.state {
			t.Errorf("stateField(%+v) = %s, want %s", tt.v, got, tt.state)
		}
		if got := retryAfter(tt.v); got != tt.ret {
			t.Errorf("retryAfter(%+v) = %s, want %s", tt.v, got, tt.ret)
		}
	}
}
