package config

import (
	"math"
	"strconv"
	"time"
)

// Rate-limit defaults and bounds.
const (
	// defaultRateLimitMaxKeys is the default of LocalRateLimit.MaxKeys.
	defaultRateLimitMaxKeys = 100000
	// defaultRateLimitTimeout is the default of GlobalRateLimit.Timeout.
	defaultRateLimitTimeout = 50 * time.Millisecond
	// maxRateLimitTimeout bounds GlobalRateLimit.Timeout: every request of the route may wait this
	// long for Redis.
	maxRateLimitTimeout = 5 * time.Second
	// maxRedisDB is the highest database number a default Redis server has.
	maxRedisDB = 15
	// maxDefaultBurst caps the burst derived from a very large rate.
	maxDefaultBurst = math.MaxInt32
)

// defaultRateLimit fills the defaults of a rate-limit policy: a burst of the rate rounded up (at
// least 1), 100000 tracked keys for a local limit and a 50ms Redis timeout for a global one.
func defaultRateLimit(p *RateLimitPolicy) {
	if l := p.Local; l != nil {
		setDefault(&l.Burst, defaultBurst(l.Rate))
		setDefault(&l.MaxKeys, defaultRateLimitMaxKeys)
	}
	if g := p.Global; g != nil {
		setDefault(&g.Burst, defaultBurst(g.Rate))
		setDefault(&g.Timeout, defaultRateLimitTimeout)
	}
}

// defaultBurst returns rate rounded up, at least 1 and at most maxDefaultBurst. A rate that is
// not a number above 0 gets 1; the validator reports the rate itself.
func defaultBurst(rate float64) int {
	b := math.Ceil(rate)
	switch {
	case !(b >= 1): // also NaN
		return 1
	case b > maxDefaultBurst:
		return maxDefaultBurst
	}
	return int(b)
}

// rateLimit checks a rate-limit policy at s (a route's "rateLimit").
func (v *validator) rateLimit(s scope, p *RateLimitPolicy) {
	if p.Local == nil && p.Global == nil {
		s.errorf("set at least one of local or global")
	}
	if l := p.Local; l != nil {
		ls := s.key("local")
		checkRate(ls.key("rate"), l.Rate)
		checkNotNegative(ls.key("burst"), l.Burst)
		checkRateLimitKey(ls.key("key"), l.Key)
		if l.MaxKeys < 1 {
			ls.key("maxKeys").errorf("must be at least 1")
		}
	}
	if g := p.Global; g != nil {
		gs := s.key("global")
		checkRedis(gs, g.Redis, g.PasswordEnv, g.DB)
		checkRate(gs.key("rate"), g.Rate)
		checkNotNegative(gs.key("burst"), g.Burst)
		checkRateLimitKey(gs.key("key"), g.Key)
		switch {
		case g.Timeout <= 0:
			gs.key("timeout").errorf("must be above 0")
		case g.Timeout > maxRateLimitTimeout:
			gs.key("timeout").errorf("%v is longer than the maximum of %v", g.Timeout, maxRateLimitTimeout)
		}
	}
}

// checkRate checks a rate in requests per second: a finite number above 0.
func checkRate(s scope, rate float64) {
	switch {
	case rate == 0:
		s.errorf("required: the sustained rate in requests per second, above 0")
	case math.IsNaN(rate) || math.IsInf(rate, 0) || rate < 0:
		s.errorf("%s is not a rate; expected a finite number of requests per second above 0", strconv.FormatFloat(rate, 'g', -1, 64))
	}
}

// checkRateLimitKey checks what a limit counts separately: at most one of clientIP and header.
func checkRateLimitKey(s scope, k RateLimitKey) {
	if n := btoi(k.ClientIP) + btoi(k.Header != "") + btoi(k.Consumer); n > 1 {
		s.errorf("set at most one of clientIP, header and consumer")
	}
	if k.Header != "" && !isToken(k.Header) {
		s.key("header").errorf("%q is not a valid header name", k.Header)
	}
}

// checkRedis checks the Redis server settings of the policy at s: its address, the environment
// variable of its password and its database number.
func checkRedis(s scope, addr, passwordEnv string, db int) {
	if addr == "" {
		s.key("redis").errorf("required: the host:port of the Redis server")
	} else {
		checkEndpointAddress(s.key("redis"), addr)
	}
	if passwordEnv != "" && !isEnvName(passwordEnv) {
		s.key("passwordEnv").errorf("%q is not a valid environment variable name", passwordEnv)
	}
	if db < 0 || db > maxRedisDB {
		s.key("db").errorf("%d is not a database number in 0..%d", db, maxRedisDB)
	}
}

// isEnvName reports whether s is a portable environment variable name: a letter or underscore,
// then letters, digits and underscores.
func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// btoi is 1 for true and 0 for false.
func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
