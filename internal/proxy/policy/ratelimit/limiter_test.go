package ratelimit

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
)

// newTestStore returns a store on a fake clock that counts decisions; it is closed when the test
// ends.
func newTestStore(t *testing.T) (*Store, *fakeClock, *decisions) {
	t.Helper()
	d := &decisions{}
	s := NewStore(Options{OnDecision: d.record})
	clk := &fakeClock{}
	s.clock = clk.read
	t.Cleanup(s.Close)
	return s, clk, d
}

// mustLimiter returns the store's limiter for route and p, failing the test on error.
func mustLimiter(t *testing.T, s *Store, route string, p *config.RateLimitPolicy) *Limiter {
	t.Helper()
	l, err := s.Limiter(route, p)
	if err != nil {
		t.Fatalf("Limiter(%q): %v", route, err)
	}
	return l
}

// TestLocalLimitResponses checks the statuses, reason and fields of admitted and refused requests
// on a fake clock.
func TestLocalLimitResponses(t *testing.T) {
	s, clk, d := newTestStore(t)
	l := mustLimiter(t, s, "api", &config.RateLimitPolicy{Local: &config.LocalRateLimit{Rate: 1, Burst: 2, MaxKeys: 10}})

	type want struct {
		status               int
		policy, state, retry string
	}
	steps := []struct {
		advance time.Duration
		want    want
	}{
		{0, want{200, `"default";q=2;w=2`, `"default";r=1;t=1`, ""}},
		{0, want{200, `"default";q=2;w=2`, `"default";r=0;t=2`, ""}},
		{0, want{429, `"default";q=2;w=2`, `"default";r=0;t=2`, "1"}},
		{500 * time.Millisecond, want{429, `"default";q=2;w=2`, `"default";r=0;t=2`, "1"}},
		{500 * time.Millisecond, want{200, `"default";q=2;w=2`, `"default";r=0;t=2`, ""}},
		{10 * time.Second, want{200, `"default";q=2;w=2`, `"default";r=1;t=1`, ""}},
	}
	for i, st := range steps {
		clk.advance(st.advance)
		x, rec := newExchange("192.0.2.1")
		serve(l, x)
		got := want{rec.head.Status, rec.header("RateLimit-Policy"), rec.header("RateLimit"), rec.header("Retry-After")}
		if got != st.want {
			t.Errorf("step %d: got %+v, want %+v", i, got, st.want)
		}
		if st.want.status == 429 {
			if x.Reason != ReasonRateLimited || rec.header(proxy.ReasonHeader) != ReasonRateLimited {
				t.Errorf("step %d: reason %q, header %q, want %q", i, x.Reason, rec.header(proxy.ReasonHeader), ReasonRateLimited)
			}
			if rec.header("Cache-Control") != "no-store" || rec.body.String() != "429 rate_limited\n" || !rec.done {
				t.Errorf("step %d: Cache-Control %q, body %q, finished %v", i, rec.header("Cache-Control"), rec.body.String(), rec.done)
			}
		}
	}
	if a, l := d.count("api", DecisionAdmitted), d.count("api", DecisionLimited); a != 4 || l != 2 {
		t.Errorf("decisions: %d admitted, %d limited; want 4 and 2", a, l)
	}
}

// TestLocalLimitKeys checks what each kind of key counts separately.
func TestLocalLimitKeys(t *testing.T) {
	tests := []struct {
		desc string
		key  config.RateLimitKey
		reqs [][]string // client address, then header fields
		want []int
	}{
		{
			desc: "route",
			reqs: [][]string{{"192.0.2.1"}, {"192.0.2.2"}, {"192.0.2.3", "X-Key", "a"}},
			want: []int{200, 429, 429},
		},
		{
			desc: "client address",
			key:  config.RateLimitKey{ClientIP: true},
			reqs: [][]string{{"192.0.2.1"}, {"192.0.2.2"}, {"192.0.2.1"}, {"2001:db8::1"}, {"2001:db8::1"}},
			want: []int{200, 200, 429, 200, 429},
		},
		{
			desc: "header",
			key:  config.RateLimitKey{Header: "X-Key"},
			reqs: [][]string{
				{"192.0.2.1", "X-Key", "a"}, {"192.0.2.1", "x-key", "b"}, {"192.0.2.2", "X-KEY", "a"},
				{"192.0.2.1"}, {"192.0.2.2"}, {"192.0.2.2", "X-Key", ""},
			},
			want: []int{200, 200, 429, 200, 429, 429},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			s, _, _ := newTestStore(t)
			l := mustLimiter(t, s, "r", &config.RateLimitPolicy{Local: &config.LocalRateLimit{Rate: 0.001, Burst: 1, MaxKeys: 100, Key: tt.key}})
			for i, r := range tt.reqs {
				x, rec := newExchange(r[0], r[1:]...)
				serve(l, x)
				if rec.head.Status != tt.want[i] {
					t.Errorf("request %d %v: status %d, want %d", i, r, rec.head.Status, tt.want[i])
				}
			}
		})
	}
}

// TestStoreKeepsLimiters checks which limiter (and so which buckets) a route gets across reloads,
// refused reloads and Retain.
func TestStoreKeepsLimiters(t *testing.T) {
	s, _, _ := newTestStore(t)
	policy := func(rate float64) *config.RateLimitPolicy {
		return &config.RateLimitPolicy{Local: &config.LocalRateLimit{Rate: rate, Burst: 1, MaxKeys: 10}}
	}
	a := mustLimiter(t, s, "a", policy(1))
	if got := mustLimiter(t, s, "a", policy(1)); got != a {
		t.Fatal("an equal policy for the same route got a new limiter")
	}
	if got := mustLimiter(t, s, "b", policy(1)); got == a {
		t.Fatal("another route got the same limiter")
	}
	// A reload that changes the policy, is refused, and is followed by the old config again.
	a2 := mustLimiter(t, s, "a", policy(2))
	if a2 == a {
		t.Fatal("a changed policy got the old limiter")
	}
	if got := mustLimiter(t, s, "a", policy(1)); got != a {
		t.Fatal("the policy of the running table did not get its limiter back after a refused reload")
	}
	s.Retain(map[string]bool{"a": true})
	if got := mustLimiter(t, s, "a", policy(2)); got == a2 {
		t.Fatal("Retain kept a limiter that was not the last one returned")
	}
	s.Retain(map[string]bool{"a": true})
	if got := mustLimiter(t, s, "b", policy(1)); got == nil {
		t.Fatal("no limiter")
	}
	s.mu.Lock()
	n := len(s.limiters)
	s.mu.Unlock()
	if n != 2 {
		t.Fatalf("store holds limiters of %d routes, want 2", n)
	}
	s.Retain(map[string]bool{})
	s.mu.Lock()
	n = len(s.limiters)
	s.mu.Unlock()
	if n != 0 {
		t.Fatalf("store holds limiters of %d routes after Retain of none", n)
	}

	// A route that lost its rate limit loses its limiter at the next Retain.
	d := mustLimiter(t, s, "d", policy(1))
	s.Retain(map[string]bool{"d": true})
	s.Retain(map[string]bool{"d": true}) // a reload that did not ask for d's limiter
	if got := mustLimiter(t, s, "d", policy(1)); got == d {
		t.Fatal("a route without a rate limit kept its limiter")
	}

	// Buckets are the limiter's: one kept across a reload keeps its state.
	l := mustLimiter(t, s, "c", policy(0.001))
	x, _ := newExchange("192.0.2.1")
	serve(l, x)
	s.Retain(map[string]bool{"c": true})
	x, rec := newExchange("192.0.2.1")
	serve(mustLimiter(t, s, "c", policy(0.001)), x)
	if rec.head.Status != 429 {
		t.Fatalf("after a reload with the same policy the bucket was full again (status %d)", rec.head.Status)
	}
}

// TestStoreRefusesBadPolicies checks the policies a Store refuses, and that it refuses all after
// Close.
func TestStoreRefusesBadPolicies(t *testing.T) {
	s, _, _ := newTestStore(t)
	for _, tt := range []struct {
		desc string
		p    *config.RateLimitPolicy
		want string
	}{
		{"nil", nil, `ratelimit: route "r": no local or global limit`},
		{"empty", &config.RateLimitPolicy{}, `ratelimit: route "r": no local or global limit`},
		{"no burst", &config.RateLimitPolicy{Local: &config.LocalRateLimit{Rate: 1, MaxKeys: 1}}, "burst"},
		{"no rate", &config.RateLimitPolicy{Global: &config.GlobalRateLimit{Redis: "127.0.0.1:1", Burst: 1, Timeout: time.Second}}, "rate"},
		{"no timeout", &config.RateLimitPolicy{Global: &config.GlobalRateLimit{Redis: "127.0.0.1:1", Rate: 1, Burst: 1}}, "timeout"},
		{"no password", &config.RateLimitPolicy{Global: &config.GlobalRateLimit{
			Redis: "127.0.0.1:1", Rate: 1, Burst: 1, Timeout: time.Second, PasswordEnv: "MESHGATE_TEST_UNSET_VARIABLE",
		}}, "environment variable MESHGATE_TEST_UNSET_VARIABLE (the Redis password) is not set"},
	} {
		_, err := s.Limiter("r", tt.p)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.desc, err, tt.want)
		}
	}
	s.Close()
	if _, err := s.Limiter("r", &config.RateLimitPolicy{Local: &config.LocalRateLimit{Rate: 1, Burst: 1, MaxKeys: 1}}); !errors.Is(err, errClosed) {
		t.Errorf("after Close: %v, want %v", err, errClosed)
	}
}

// TestStoreSharesRedisClients checks that limiters on one Redis server share a client, that a
// changed password gets a new one, and that Retain closes the clients no limiter uses.
func TestStoreSharesRedisClients(t *testing.T) {
	env := map[string]string{"PW": "first"}
	s := NewStore(Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	s.grace = 10 * time.Millisecond
	t.Cleanup(s.Close)
	global := func(addr string, rate float64) *config.RateLimitPolicy {
		return &config.RateLimitPolicy{Global: &config.GlobalRateLimit{Redis: addr, PasswordEnv: "PW", Rate: rate, Burst: 1, Timeout: time.Second}}
	}
	a := mustLimiter(t, s, "a", global("127.0.0.1:1", 1))
	b := mustLimiter(t, s, "b", global("127.0.0.1:1", 2))
	c := mustLimiter(t, s, "c", global("127.0.0.1:2", 1))
	if a.global.client != b.global.client || a.global.client == c.global.client {
		t.Fatal("clients are not shared by server")
	}
	env["PW"] = "second"
	a2 := mustLimiter(t, s, "a", global("127.0.0.1:1", 1))
	if a2 == a || a2.global.client == a.global.client {
		t.Fatal("a changed password kept the limiter and its client")
	}
	if strings.Contains(a2.fingerprint, "second") || strings.Contains(a.fingerprint, "first") {
		t.Fatal("a fingerprint holds the password")
	}
	clients := func() (active, retiring int) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.clients), len(s.retiring)
	}
	if n, _ := clients(); n != 3 {
		t.Fatalf("%d clients, want 3", n)
	}
	s.Retain(map[string]bool{"a": true, "b": true}) // a2's client, and b's (the first password's)
	if n, r := clients(); n != 2 || r != 1 {
		t.Fatalf("after Retain: %d clients and %d retiring, want 2 and 1", n, r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, r := clients(); r != 0; _, r = clients() {
		if time.Now().After(deadline) {
			t.Fatal("the unused client was not closed after the grace period")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A retired client's limiter fails its global limit rather than hanging.
	x, rec := newExchange("192.0.2.1")
	serve(c, x)
	if rec.head.Status != 503 || x.Reason != ReasonRateLimitUnavailable {
		t.Fatalf("a limiter whose client closed answered %d %q, want 503 %q", rec.head.Status, x.Reason, ReasonRateLimitUnavailable)
	}
	// Retiring and coming back within the grace period keeps the client.
	s.grace = time.Hour
	mustLimiter(t, s, "a", global("127.0.0.1:1", 1)) // a reload that drops route b
	s.Retain(map[string]bool{"a": true})
	if _, r := clients(); r != 1 {
		t.Fatalf("%d retiring clients, want 1", r)
	}
	env["PW"] = "first"
	b2 := mustLimiter(t, s, "b", global("127.0.0.1:1", 2))
	if n, r := clients(); n != 2 || r != 0 || b2.global.client != b.global.client {
		t.Fatalf("after the route came back: %d clients, %d retiring; same client %v", n, r, b2.global.client == b.global.client)
	}
	s.Retain(map[string]bool{})
	s.Close()
	if n, r := clients(); n != 0 || r != 0 {
		t.Fatalf("after Close: %d clients, %d retiring", n, r)
	}
}

// BenchmarkLocalLimit measures a request through a local per-client limit that admits it.
func BenchmarkLocalLimit(b *testing.B) {
	s := NewStore(Options{})
	defer s.Close()
	l, err := s.Limiter("bench", &config.RateLimitPolicy{Local: &config.LocalRateLimit{
		Rate: 1e9, Burst: 1e6, MaxKeys: 100000, Key: config.RateLimitKey{ClientIP: true},
	}})
	if err != nil {
		b.Fatal(err)
	}
	h := l.Middleware()(proxy.HandlerFunc(func(*proxy.Exchange) error { return nil }))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		x, _ := newExchange("192.0.2.1")
		for pb.Next() {
			x.ResponseEdits = x.ResponseEdits[:0]
			if err := h.Serve(x); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLocalLimitRefused measures a request a local route-wide limit refuses.
func BenchmarkLocalLimitRefused(b *testing.B) {
	s := NewStore(Options{})
	defer s.Close()
	l, err := s.Limiter("bench", &config.RateLimitPolicy{Local: &config.LocalRateLimit{Rate: 0.001, Burst: 1, MaxKeys: 1}})
	if err != nil {
		b.Fatal(err)
	}
	h := l.Middleware()(proxy.HandlerFunc(func(*proxy.Exchange) error { return nil }))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		x, rec := newExchange("192.0.2.1")
		for pb.Next() {
			rec.head = nil
			_ = h.Serve(x)
		}
	})
}
