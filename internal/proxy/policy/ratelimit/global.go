package ratelimit

import (
	"context"
	_ "embed" // the GCRA script
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
)

// gcraScript is the Lua source of the global limit; see gcra.lua.
//
//go:embed gcra.lua
var gcraScript string

// Bounds of the global limit's arithmetic, which Redis runs on Lua numbers (doubles) in
// microseconds since the Unix epoch.
const (
	// minIntervalMicros is the shortest emission interval: global rates above 1,000,000 per second
	// count as 1,000,000 per second.
	minIntervalMicros = 1
	// maxLimitMicros bounds burst × interval (about 35 years), keeping every sum exact in a double.
	maxLimitMicros = int64(1) << 50
	// denyCacheKeys bounds the keys the deny cache of one global limit remembers.
	denyCacheKeys = 65536
	// socketTimeout bounds a Redis dial, read or write that no context bounds; every call on the
	// request path has its policy's shorter timeout.
	socketTimeout = 5 * time.Second
)

// clientKey identifies a Redis client a Store shares between limiters: the server, the database
// and the credentials. The password itself is only kept as a digest, so that a changed password
// gets a new client without the secret being a map key.
type clientKey struct {
	addr        string
	db          int
	passwordEnv string
	password    [32]byte // SHA-256 of the password, or zero without one
}

// redisClient is a Redis client shared by the global limits that use the same server.
type redisClient struct {
	key     clientKey
	c       *redis.Client
	log     *slog.Logger
	failing atomic.Bool // set while calls fail, so that only changes are logged
}

// newRedisClient returns a client for key that never retries and is bounded by its callers'
// contexts. It connects lazily, on the first call.
func newRedisClient(key clientKey, password string, log *slog.Logger) *redisClient {
	c := redis.NewClient(&redis.Options{
		Addr:                     key.addr,
		Password:                 password,
		DB:                       key.db,
		Protocol:                 2,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		MaxRetries:               -1, // a retry would not fit in a request's timeout
		DialerRetries:            1,
		DialTimeout:              socketTimeout,
		ReadTimeout:              socketTimeout,
		WriteTimeout:             socketTimeout,
		ContextTimeoutEnabled:    true,
	})
	return &redisClient{key: key, c: c, log: log.With("redis", key.addr, "db", key.db)}
}

// failed records a failed call, logging when the server was fine until now.
func (c *redisClient) failed(err error) {
	if c.failing.CompareAndSwap(false, true) {
		c.log.Warn("rate limit: redis is not answering; global limits fail open or answer 503 until it does", "error", err)
	}
}

// succeeded records a successful call, logging when the server was failing until now.
func (c *redisClient) succeeded() {
	if c.failing.Load() && c.failing.CompareAndSwap(true, false) {
		c.log.Info("rate limit: redis is answering again")
	}
}

// close closes the client's connections.
func (c *redisClient) close() {
	_ = c.c.Close()
}

// globalLimit is the global part of a Limiter: GCRA in Redis, with a deny cache in front.
type globalLimit struct {
	rule       rule // the same rate and burst in nanoseconds, for the deny cache
	intervalUS int64
	limitUS    int64
	prefix     string
	spec       keySpec
	timeout    time.Duration
	failOpen   bool
	client     *redisClient
	script     *redis.Script
	deny       *slots // per key, until when (store clock) Redis refuses it
	policy     string // the RateLimit-Policy value
}

// newGlobalLimit compiles g for route.
func newGlobalLimit(route string, g *config.GlobalRateLimit, c *redisClient, script *redis.Script) *globalLimit {
	r := newRule(g.Rate, g.Burst)
	iv := math.Round(1e6 / g.Rate)
	iv = max(iv, minIntervalMicros)
	if maxIv := float64(maxLimitMicros / r.burst); iv > maxIv || math.IsNaN(iv) {
		iv = maxIv
	}
	spec := newKeySpec(g.Key)
	return &globalLimit{
		rule:       r,
		intervalUS: int64(iv),
		limitUS:    int64(iv) * r.burst,
		prefix:     redisKeyPrefix(route),
		spec:       spec,
		timeout:    g.Timeout,
		failOpen:   g.FailOpen,
		client:     c,
		script:     script,
		deny:       newSlots(spec, denyCacheKeys),
		policy:     policyField(&r),
	}
}

// errBadReply reports a script reply of the wrong shape.
var errBadReply = errors.New("ratelimit: unexpected reply from the GCRA script")

// take runs one request of x against the global limit, reading the time from clock (the store's).
// It answers from the deny cache when the key is known to be refused, else asks Redis within the
// timeout.
func (g *globalLimit) take(x *proxy.Exchange, clock func() int64) (verdict, error) {
	if s := g.deny.lookup(x); s != nil {
		if until, now := s.v.Load(), clock(); until > now {
			wait := until - now
			return verdict{wait: time.Duration(wait), reset: time.Duration(wait + g.rule.limit - g.rule.interval)}, nil
		}
	}
	now := clock()
	ctx := x.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	v, err := g.ask(ctx, redisKey(g.prefix, g.spec, g.spec.text(x)), 0)
	if err != nil {
		if ctx.Err() == nil { // not the client going away
			g.client.failed(err)
		}
		return verdict{}, err
	}
	g.client.succeeded()
	if !v.admitted {
		// Measured from before the call, the cached time is never later than Redis's own.
		s := g.deny.get(x)
		until := now + int64(v.wait)
		for old := s.v.Load(); old < until && !s.v.CompareAndSwap(old, until); old = s.v.Load() {
		}
	}
	return v, nil
}

// ask runs the GCRA script for key within the timeout, at the server's time, or at atMicros
// microseconds since the Unix epoch when that is not 0 (tests only).
func (g *globalLimit) ask(ctx context.Context, key string, atMicros int64) (verdict, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	args := []any{g.intervalUS, g.limitUS}
	if atMicros != 0 {
		args = append(args, atMicros)
	}
	res, err := g.script.Run(ctx, g.client.c, []string{key}, args...).Int64Slice()
	if err != nil {
		return verdict{}, fmt.Errorf("ratelimit: redis %s: %w", g.client.key.addr, err)
	}
	if len(res) != 3 {
		return verdict{}, errBadReply
	}
	us := func(n int64) time.Duration { return time.Duration(n) * time.Microsecond }
	if res[0] == 1 {
		return verdict{admitted: true, remaining: res[1], reset: us(res[2])}, nil
	}
	return verdict{wait: us(res[1]), reset: us(res[2])}, nil
}
