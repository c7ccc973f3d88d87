package ratelimit

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meshgate/meshgate/internal/config"
)

// callCounter is a Redis client hook that counts the script calls sent (EVALSHA and EVAL, not
// the commands that set up a connection).
type callCounter struct{ n atomic.Int64 }

// DialHook implements redis.Hook.
func (c *callCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (c *callCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (c *callCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// countCalls installs a callCounter on l's Redis client.
func countCalls(l *Limiter) *callCounter {
	c := &callCounter{}
	l.global.client.c.AddHook(c)
	return c
}

// inspector returns a plain client of the test server, closed when the test ends.
func inspector(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// globalPolicy returns a route-wide global policy on addr.
func globalPolicy(addr string, rate float64, burst int, timeout time.Duration, failOpen bool) *config.RateLimitPolicy {
	return &config.RateLimitPolicy{Global: &config.GlobalRateLimit{Redis: addr, Rate: rate, Burst: burst, Timeout: timeout, FailOpen: failOpen}}
}

// TestGCRAScript runs the script on a simulated clock: it admits exactly the burst at once, then
// exactly the rate.
func TestGCRAScript(t *testing.T) {
	srv := startRedis(t)
	s, _, _ := newTestStore(t)
	l := mustLimiter(t, s, "script", globalPolicy(srv.Addr, 10, 5, time.Second, false))
	g := l.global
	ctx := context.Background()
	const t0 = int64(1_700_000_000_000_000) // microseconds
	for i := range 5 {
		v, err := g.ask(ctx, "meshgate:rl:script", t0)
		want := verdict{admitted: true, remaining: int64(4 - i), reset: time.Duration(i+1) * 100 * time.Millisecond}
		if err != nil || v != want {
			t.Fatalf("request %d of the burst: %+v, %v; want %+v", i, v, err, want)
		}
	}
	v, err := g.ask(ctx, "meshgate:rl:script", t0)
	if want := (verdict{wait: 100 * time.Millisecond, reset: 500 * time.Millisecond}); err != nil || v != want {
		t.Fatalf("request over the burst: %+v, %v; want %+v", v, err, want)
	}
	pttl, err := inspector(t, srv.Addr).PTTL(ctx, "meshgate:rl:script").Result()
	if err != nil || pttl <= 0 || pttl > 501*time.Millisecond {
		t.Fatalf("key TTL %v, %v; want (0, 501ms]", pttl, err)
	}
	admitted := 0
	for at := t0 + 10_000; at <= t0+10_000_000; at += 10_000 { // 10 simulated seconds in 10ms steps
		for {
			v, err := g.ask(ctx, "meshgate:rl:script", at)
			if err != nil {
				t.Fatal(err)
			}
			if !v.admitted {
				break
			}
			admitted++
		}
	}
	if admitted != 100 {
		t.Fatalf("admitted %d over 10 simulated seconds at 10/s, want 100", admitted)
	}
}

// TestGCRAServerClock runs the script on Redis's own clock for a second.
func TestGCRAServerClock(t *testing.T) {
	srv := startRedis(t)
	s, _, _ := newTestStore(t)
	g := mustLimiter(t, s, "clock", globalPolicy(srv.Addr, 50, 25, time.Second, false)).global
	ctx := context.Background()
	admitted := 0
	start := time.Now()
	for i := 0; i < 200000 && time.Since(start) < time.Second; i++ {
		v, err := g.ask(ctx, "meshgate:rl:clock", 0)
		if err != nil {
			t.Fatal(err)
		}
		if v.admitted {
			admitted++
		}
	}
	elapsed := time.Since(start)
	want := 25 + 50*elapsed.Seconds()
	if d := float64(admitted) - want; d < -2 || d > 2 {
		t.Fatalf("admitted %d in %v at 50/s with burst 25, want %.1f ± 2", admitted, elapsed, want)
	}
}

// TestGlobalLimitTwoProcesses runs two stores (two meshgate processes) against one Redis from 32
// goroutines for 3 seconds: together they admit the limit, within 5%.
func TestGlobalLimitTwoProcesses(t *testing.T) {
	srv := startRedis(t)
	// The burst covers the machine stalling this process for up to half a second: a limiter loses
	// the tokens of a pause longer than burst/rate in which no request arrives.
	const rate, burst = 200, 100
	var limiters []*Limiter
	var counters []*callCounter
	var stores []*decisions
	for range 2 {
		d := &decisions{}
		s := NewStore(Options{OnDecision: d.record})
		t.Cleanup(s.Close)
		l := mustLimiter(t, s, "shared", globalPolicy(srv.Addr, rate, burst, time.Second, false))
		limiters, stores, counters = append(limiters, l), append(stores, d), append(counters, countCalls(l))
	}
	var admitted, requests atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(3 * time.Second)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := limiters[i%2]
			for n := 0; n < 1_000_000 && time.Now().Before(stop); n++ {
				x, rec := newExchange("192.0.2.1")
				serve(l, x)
				requests.Add(1)
				if rec.head.Status == 200 {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	// Requests were sent until stop; those still in flight then end within a few milliseconds.
	elapsed := min(time.Since(start), stop.Sub(start))
	want := burst + rate*elapsed.Seconds()
	got := float64(admitted.Load())
	calls := counters[0].n.Load() + counters[1].n.Load()
	t.Logf("admitted %.0f of %d requests in %v: %.1f%% of the limit %.0f; %d Redis calls", got, requests.Load(), elapsed, 100*got/want, want, calls)
	if got < want*0.95 || got > want*1.05 {
		t.Fatalf("admitted %.0f, want %.0f within 5%%", got, want)
	}
	for i, d := range stores {
		if n := d.count("shared", DecisionUnavailable); n > 0 {
			t.Errorf("process %d: %d requests found Redis unavailable", i, n)
		}
		if d.count("shared", DecisionAdmitted) == 0 {
			t.Errorf("process %d admitted nothing", i)
		}
	}
}

// TestDenyCache checks that a key Redis refused is refused locally until Redis would admit it.
func TestDenyCache(t *testing.T) {
	srv := startRedis(t)
	s, _, d := newTestStore(t)
	s.clock = NewStore(Options{}).clock // the real clock: the cache and Redis must agree
	p := globalPolicy(srv.Addr, 1, 1, time.Second, false)
	p.Global.Key = config.RateLimitKey{Header: "X-Tenant"}
	l := mustLimiter(t, s, "cached", p)
	calls := countCalls(l)
	const n = 1000
	start := time.Now()
	var lastRetry string
	for range n {
		x, rec := newExchange("192.0.2.1", "X-Tenant", "a")
		serve(l, x)
		if rec.head.Status == 429 {
			lastRetry = rec.header("Retry-After")
		}
	}
	elapsed := time.Since(start)
	if elapsed > 900*time.Millisecond {
		t.Skipf("%d requests took %v, longer than the key's refusal: the machine is too slow for this test", n, elapsed)
	}
	got := calls.n.Load()
	t.Logf("%d requests of one limited key made %d Redis calls (%d saved)", n, got, n-int(got))
	if a, lim := d.count("cached", DecisionAdmitted), d.count("cached", DecisionLimited); a != 1 || lim != n-1 {
		t.Fatalf("%d admitted and %d limited, want 1 and %d", a, lim, n-1)
	}
	if got > 3 { // the first request: EVALSHA, then EVAL after NOSCRIPT; the second: EVALSHA
		t.Fatalf("%d Redis calls, want at most 3", got)
	}
	if lastRetry != "1" {
		t.Fatalf("Retry-After %q from the cache, want 1", lastRetry)
	}
	// Another key is not in the cache.
	x, rec := newExchange("192.0.2.1", "X-Tenant", "b")
	serve(l, x)
	if rec.head.Status != 200 || calls.n.Load() != got+1 {
		t.Fatalf("another key: status %d after %d calls, want 200 after %d", rec.head.Status, calls.n.Load(), got+1)
	}
	// The cache forgets the refusal when Redis would admit the key again.
	time.Sleep(time.Until(start.Add(1100 * time.Millisecond)))
	x, rec = newExchange("192.0.2.1", "X-Tenant", "a")
	serve(l, x)
	if rec.head.Status != 200 {
		t.Fatalf("after its refusal ran out the key got %d", rec.head.Status)
	}
}

// TestLocalAndGlobal checks that the local limit decides first and that a global refusal gives
// the local token back.
func TestLocalAndGlobal(t *testing.T) {
	srv := startRedis(t)
	s, _, d := newTestStore(t)
	l := mustLimiter(t, s, "both", &config.RateLimitPolicy{
		Local:  &config.LocalRateLimit{Rate: 0.001, Burst: 2, MaxKeys: 10},
		Global: &config.GlobalRateLimit{Redis: srv.Addr, Rate: 0.001, Burst: 1, Timeout: time.Second},
	})
	var statuses []int
	for range 4 {
		x, rec := newExchange("192.0.2.1")
		serve(l, x)
		statuses = append(statuses, rec.head.Status)
		if rec.head.Status == 200 && rec.header("RateLimit") != `"default";r=0;t=1000` {
			t.Errorf("admitted with RateLimit %q: want the global limit's, which has fewer left", rec.header("RateLimit"))
		}
	}
	if want := []int{200, 429, 429, 429}; !slices.Equal(statuses, want) {
		t.Fatalf("statuses %v, want %v", statuses, want)
	}
	if v := l.local.buckets.one.take(&l.local.rule, s.clock()); !v.admitted {
		t.Fatal("the global refusals used up the local bucket")
	}
	if n := d.count("both", DecisionLimited); n != 3 {
		t.Fatalf("%d limited, want 3", n)
	}

	// A local refusal does not ask Redis.
	l2 := mustLimiter(t, s, "local-first", &config.RateLimitPolicy{
		Local:  &config.LocalRateLimit{Rate: 0.001, Burst: 1, MaxKeys: 10},
		Global: &config.GlobalRateLimit{Redis: srv.Addr, Rate: 1, Burst: 1000, Timeout: time.Second}, // the key lives 1s
	})
	calls := countCalls(l2)
	for i := range 10 {
		x, rec := newExchange("192.0.2.1")
		serve(l2, x)
		if want := map[bool]int{true: 200, false: 429}[i == 0]; rec.head.Status != want {
			t.Fatalf("request %d: %d, want %d", i, rec.head.Status, want)
		}
	}
	if n := calls.n.Load(); n > 2 {
		t.Fatalf("%d Redis calls for one admitted request, want at most 2", n)
	}
	if rk := inspector(t, srv.Addr).Exists(context.Background(), "meshgate:rl:local-first").Val(); rk != 1 {
		t.Fatal("no Redis key meshgate:rl:local-first")
	}
}

// TestRedisKeys checks the Redis keys of each kind of key, with a route name that needs escaping.
func TestRedisKeys(t *testing.T) {
	srv := startRedis(t)
	s, _, _ := newTestStore(t)
	long := strings.Repeat("x", 300)
	for _, tc := range []struct {
		key    config.RateLimitKey
		fields []string
		want   string
	}{
		{config.RateLimitKey{}, nil, "meshgate:rl:a%3Ab%25"},
		{config.RateLimitKey{ClientIP: true}, nil, "meshgate:rl:a%3Ab%25:2001:db8::7"},
		{config.RateLimitKey{Header: "X-Key"}, []string{"X-Key", "k1"}, "meshgate:rl:a%3Ab%25:k1"},
		{config.RateLimitKey{Header: "X-Key"}, nil, "meshgate:rl:a%3Ab%25:"},
		{config.RateLimitKey{Header: "X-Key"}, []string{"X-Key", long}, "meshgate:rl:a%3Ab%25:sha256:" + sha256Hex(long)},
		{config.RateLimitKey{Header: "X-Key"}, []string{"X-Key", "sha256:00"}, "meshgate:rl:a%3Ab%25:sha256:" + sha256Hex("sha256:00")},
	} {
		p := globalPolicy(srv.Addr, 1, 1, time.Second, false)
		p.Global.Key = tc.key
		l := mustLimiter(t, s, "a:b%", p)
		x, rec := newExchange("2001:db8::7", tc.fields...)
		serve(l, x)
		if rec.head.Status != 200 {
			t.Fatalf("key %+v: status %d", tc.key, rec.head.Status)
		}
		if n := inspector(t, srv.Addr).Exists(context.Background(), tc.want).Val(); n != 1 {
			keys, _ := inspector(t, srv.Addr).Keys(context.Background(), "*").Result()
			t.Fatalf("key %+v: no Redis key %q; have %q", tc.key, tc.want, keys)
		}
	}
}

// TestRedisFailure stops and then kills the Redis server under a fail-open and a fail-closed
// limit: the first admits, the second answers 503, and no request waits much longer than the
// timeout. It also checks the password is used and never logged.
func TestRedisFailure(t *testing.T) {
	const password = "s3cr3t-pw"
	srv := startRedis(t, "--requirepass", password)
	log, logs := newTestLogger()
	d := &decisions{}
	s := NewStore(Options{Logger: log, OnDecision: d.record, LookupEnv: func(k string) (string, bool) {
		return password, k == "REDIS_PASSWORD"
	}})
	t.Cleanup(func() {
		s.Close()
		waitGoroutinesGone(t, "tryDial", 5*time.Second)
	})
	const timeout = 50 * time.Millisecond
	const slack = 200 * time.Millisecond
	limiters := map[bool]*Limiter{}
	for _, open := range []bool{true, false} {
		p := globalPolicy(srv.Addr, 1000, 1000, timeout, open)
		p.Global.PasswordEnv = "REDIS_PASSWORD"
		limiters[open] = mustLimiter(t, s, map[bool]string{true: "open", false: "closed"}[open], p)
	}

	// run sends n requests through each limiter and checks their status and duration.
	run := func(phase string, n int, wantOpen, wantClosed int, minWait time.Duration) {
		t.Helper()
		var longest time.Duration
		for _, open := range []bool{true, false} {
			for i := range n {
				x, rec := newExchange("192.0.2.1")
				start := time.Now()
				serve(limiters[open], x)
				took := time.Since(start)
				longest = max(longest, took)
				want := map[bool]int{true: wantOpen, false: wantClosed}[open]
				if rec.head.Status != want {
					t.Fatalf("%s: fail-open %v request %d: status %d (%s), want %d", phase, open, i, rec.head.Status, x.Reason, want)
				}
				if want == 503 && x.Reason != ReasonRateLimitUnavailable {
					t.Fatalf("%s: reason %q, want %q", phase, x.Reason, ReasonRateLimitUnavailable)
				}
				if took > timeout+slack || took < minWait {
					t.Fatalf("%s: fail-open %v request %d took %v, want %v..%v", phase, open, i, took, minWait, timeout+slack)
				}
			}
		}
		t.Logf("%s: longest request %v (timeout %v)", phase, longest, timeout)
	}

	run("redis up", 5, 200, 200, 0)
	srv.Pause()
	run("redis stopped", 5, 200, 503, timeout*9/10)
	srv.Resume()
	ok := false
	for deadline := time.Now().Add(5 * time.Second); !ok && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		x, rec := newExchange("192.0.2.1")
		serve(limiters[false], x)
		ok = rec.head.Status == 200
	}
	if !ok {
		t.Fatal("the fail-closed limit did not recover after Redis resumed")
	}
	srv.Kill()
	run("redis killed", 30, 200, 503, 0)

	if n := d.count("open", DecisionFailedOpen); n != 35 {
		t.Errorf("%d failed_open decisions, want 35", n)
	}
	if n := d.count("closed", DecisionUnavailable); n != 35 {
		t.Errorf("%d unavailable decisions, want 35", n)
	}
	out := logs.String()
	if strings.Contains(out, password) {
		t.Errorf("the log holds the password:\n%s", out)
	}
	if n := strings.Count(out, "redis is not answering"); n != 2 {
		t.Errorf("logged %d outages, want 2 (stopped, killed):\n%s", n, out)
	}
	if n := strings.Count(out, "redis is answering again"); n != 1 {
		t.Errorf("logged %d recoveries, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "redis="+srv.Addr) {
		t.Errorf("the log does not name the server:\n%s", out)
	}
}

// TestRedisUnreachableAddress checks a limit on a port nobody listens on: fail-closed answers
// at once.
func TestRedisUnreachableAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	s, _, _ := newTestStore(t)
	t.Cleanup(func() {
		s.Close()
		waitGoroutinesGone(t, "tryDial", 5*time.Second)
	})
	l := mustLimiter(t, s, "nowhere", globalPolicy(addr, 1, 1, 50*time.Millisecond, false))
	for i := range 30 {
		x, rec := newExchange("192.0.2.1")
		start := time.Now()
		serve(l, x)
		if rec.head.Status != 503 || time.Since(start) > 200*time.Millisecond {
			t.Fatalf("request %d: %d after %v, want 503 within 200ms", i, rec.head.Status, time.Since(start))
		}
	}
}
