package gateway_test

import (
	"bytes"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/testredis"
)

// waitRedisProbesGone waits until the Redis client library's background dial probe (which
// checks that its pool was closed only between one-second pauses) has ended, so that the
// package's leak check does not see it.
func waitRedisProbesGone(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		n := runtime.Stack(buf, true)
		if !bytes.Contains(buf[:n], []byte("tryDial")) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("a Redis dial probe is still running 5s after the gateways stopped")
			return
		}
	}
}

// planConfig is a gateway with API-key consumers on plans: "small" (1 request/s, burst 3),
// "metered" (a quota of 5 a day, failing closed), "metered-open" (the same, failing open) and
// "tiny" (a quota of 1 a day). redis is the quota server's address and timeout the longest a
// request waits for it. Routes /a and /b need a key; /docs does not.
func planConfig(redis, timeout, up string) string {
	var consumers strings.Builder
	for _, c := range []struct{ name, plan string }{
		{"alice", "small"}, {"bob", "small"}, {"carol", ""},
		{"dora", "metered"}, {"erik", "metered"}, {"fay", "metered-open"}, {"gus", "tiny"},
	} {
		fmt.Fprintf(&consumers, "  - name: %s\n    apiKeys: [{sha256: %q}]\n", c.name, sha256Hex([]byte(c.name+"-key")))
		if c.plan != "" {
			fmt.Fprintf(&consumers, "    plan: %s\n", c.plan)
		}
	}
	return configHead + fmt.Sprintf(`listeners: [{name: public, address: "127.0.0.1:0"}]
plans:
  - name: small
    rateLimit: {rate: 1, burst: 3}
  - name: metered
    quota: {limit: 5, period: day, redis: %[1]q, timeout: %[4]s}
  - name: metered-open
    quota: {limit: 5, period: day, redis: %[1]q, timeout: %[4]s, failOpen: true}
  - name: tiny
    quota: {limit: 1, period: day, redis: %[1]q, timeout: %[4]s}
consumers:
%[2]sauthenticators:
  - name: key
    apiKey: {}
routes:
  - name: a
    match: [{path: {prefix: /a}}]
    auth: {authenticators: [key]}
    backends: [{service: app}]
  - name: b
    match: [{path: {prefix: /b}}]
    auth: {authenticators: [key]}
    backends: [{service: app}]
  - name: docs
    match: [{path: {prefix: /docs}}]
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: %[3]q}]
`, redis, consumers.String(), up, timeout)
}

// keyGet sends a GET to url with the API key of consumer (none when consumer is "").
func keyGet(t *testing.T, c *http.Client, url, consumer string) *result {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if consumer != "" {
		req.Header.Set("X-API-Key", consumer+"-key")
	}
	return do(t, c, req)
}

// TestPlanRateLimitPerConsumer: a plan's rate limit gives every consumer on it a bucket of its
// own, shared by all the routes that authenticate it: alice's fourth request in a burst gets 429
// rate_limited (on another route than the first three), while bob, on the same plan, and carol,
// on none, are still admitted; unauthenticated routes are not metered.
func TestPlanRateLimitPerConsumer(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, "up", upstreamOptions{})
	// The quota plans name a Redis nobody listens on: this test never uses them.
	gw := startGateway(t, planConfig(freeAddr(t), "50ms", up.Addr))
	base := baseURL(t, gw, "public")
	c := newClient(t)

	for i := range 3 {
		r := keyGet(t, c, base+"/a", "alice")
		if r.Status != 200 || r.Echo == nil {
			t.Fatalf("alice request %d: status %d (%q), want 200", i+1, r.Status, r.reason())
		}
		if got := r.Echo.Header.Get("X-Meshgate-Consumer"); got != "alice" {
			t.Fatalf("alice request %d: upstream consumer %q", i+1, got)
		}
		if r.Header.Get("RateLimit-Policy") == "" || r.Header.Get("RateLimit") == "" {
			t.Errorf("alice request %d: no RateLimit-Policy/RateLimit fields: %v", i+1, r.Header)
		}
	}
	r := keyGet(t, c, base+"/b", "alice")
	if r.Status != 429 || r.reason() != "rate_limited" {
		t.Fatalf("alice request 4 (another route): status %d (%q), want 429 rate_limited", r.Status, r.reason())
	}
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("alice request 4: Retry-After %q, want a positive number of seconds", r.Header.Get("Retry-After"))
	}
	for i := range 3 {
		if r := keyGet(t, c, base+"/b", "bob"); r.Status != 200 {
			t.Errorf("bob request %d while alice is limited: status %d (%q), want 200", i+1, r.Status, r.reason())
		}
	}
	for i := range 6 {
		if r := keyGet(t, c, base+"/a", "carol"); r.Status != 200 || r.Header.Get("RateLimit") != "" {
			t.Errorf("carol (no plan) request %d: status %d (%q), RateLimit %q; want 200 unmetered", i+1, r.Status, r.reason(), r.Header.Get("RateLimit"))
		}
	}
	for i := range 6 {
		if r := get(t, c, base+"/docs"); r.Status != 200 {
			t.Errorf("anonymous request %d to an unauthenticated route: status %d (%q)", i+1, r.Status, r.reason())
		}
	}
	if v, _ := metricValue(t, gw, "meshgate_ratelimit_decisions_total", map[string]string{"route": "plan:small", "decision": "limited"}); v != 1 {
		t.Errorf("plan:small limited decisions = %v, want 1", v)
	}
	if n := up.Hits.Load(); n != 3+3+6+6 {
		t.Errorf("the upstream saw %d requests, want %d", n, 3+3+6+6)
	}
}

// TestQuotaSharedAcrossGateways: a plan's daily quota of 5 counted in Redis admits 5 requests
// with X-Quota-Limit and a decreasing X-Quota-Remaining, then answers 429 quota_exceeded with a
// positive Retry-After; a second gateway on the same Redis sees the same count (its first request
// for that consumer is refused), and both count another consumer together.
func TestQuotaSharedAcrossGateways(t *testing.T) {
	redis := testredis.Start(t)
	t.Cleanup(func() { waitRedisProbesGone(t) }) // runs after the gateways have stopped
	up := startUpstream(t, "up", upstreamOptions{})
	cfg := planConfig(redis.Addr, "1s", up.Addr)
	gw1 := startGateway(t, cfg)
	gw2 := startGateway(t, cfg)
	base1, base2 := baseURL(t, gw1, "public"), baseURL(t, gw2, "public")
	c := newClient(t)

	for i := range 5 {
		r := keyGet(t, c, base1+"/a", "dora")
		if r.Status != 200 {
			t.Fatalf("dora request %d: status %d (%q) %q, want 200", i+1, r.Status, r.reason(), r.Body)
		}
		if got, want := r.Header.Get("X-Quota-Remaining"), strconv.Itoa(4-i); got != want {
			t.Errorf("dora request %d: X-Quota-Remaining %q, want %q", i+1, got, want)
		}
		if got := r.Header.Get("X-Quota-Limit"); got != "5" {
			t.Errorf("dora request %d: X-Quota-Limit %q, want 5", i+1, got)
		}
	}
	checkExceeded := func(what string, r *result) {
		t.Helper()
		if r.Status != 429 || r.reason() != "quota_exceeded" {
			t.Fatalf("%s: status %d (%q), want 429 quota_exceeded", what, r.Status, r.reason())
		}
		if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 || s > 24*3600 {
			t.Errorf("%s: Retry-After %q, want 1..86400 seconds (the end of the UTC day)", what, r.Header.Get("Retry-After"))
		}
		if got := r.Header.Get("X-Quota-Remaining"); got != "0" {
			t.Errorf("%s: X-Quota-Remaining %q, want 0", what, got)
		}
	}
	checkExceeded("dora request 6", keyGet(t, c, base1+"/b", "dora"))
	checkExceeded("dora request 7", keyGet(t, c, base1+"/a", "dora"))
	checkExceeded("dora's first request to the second gateway", keyGet(t, c, base2+"/a", "dora"))

	// Another consumer on the plan has a count of its own, which both gateways share.
	for i, base := range []string{base2, base1, base2} {
		r := keyGet(t, c, base+"/a", "erik")
		if got, want := r.Header.Get("X-Quota-Remaining"), strconv.Itoa(4-i); r.Status != 200 || got != want {
			t.Errorf("erik request %d: status %d (%q), X-Quota-Remaining %q; want 200 with %s", i+1, r.Status, r.reason(), got, want)
		}
	}
	// Requests that authenticate no one are not counted.
	for i := range 7 {
		if r := get(t, c, base1+"/docs"); r.Status != 200 || r.Header.Get("X-Quota-Remaining") != "" {
			t.Errorf("anonymous request %d: status %d, X-Quota-Remaining %q", i+1, r.Status, r.Header.Get("X-Quota-Remaining"))
		}
	}
	if n := up.Hits.Load(); n != 5+3+7 {
		t.Errorf("the upstream saw %d requests, want %d", n, 5+3+7)
	}
}

// TestQuotaRedisDown: while the quota's Redis does not answer (stopped, then killed), a
// fail-closed quota answers 503 quota_unavailable and a fail-open one admits, each within about
// the quota's timeout; a consumer already found over its quota is still refused, from memory.
// Once a stopped Redis runs again, quotas are counted again.
func TestQuotaRedisDown(t *testing.T) {
	redis := testredis.Start(t)
	t.Cleanup(func() { waitRedisProbesGone(t) }) // runs after the gateway has stopped
	up := startUpstream(t, "up", upstreamOptions{})
	gw := startGateway(t, planConfig(redis.Addr, "300ms", up.Addr))
	base := baseURL(t, gw, "public")
	c := newClient(t)
	c.Timeout = 5 * time.Second // a hung request fails the test instead of stalling it

	for _, who := range []string{"dora", "fay", "gus"} {
		if r := keyGet(t, c, base+"/a", who); r.Status != 200 || r.Header.Get("X-Quota-Remaining") != "4" && r.Header.Get("X-Quota-Remaining") != "0" {
			t.Fatalf("%s with Redis up: status %d (%q), X-Quota-Remaining %q", who, r.Status, r.reason(), r.Header.Get("X-Quota-Remaining"))
		}
	}
	if r := keyGet(t, c, base+"/a", "gus"); r.Status != 429 || r.reason() != "quota_exceeded" {
		t.Fatalf("gus's second request: status %d (%q), want 429 quota_exceeded", r.Status, r.reason())
	}
	admitted := int64(3)

	// down sends each consumer n requests with Redis unable to answer.
	down := func(phase string, n int) {
		t.Helper()
		for i := range n {
			r := keyGet(t, c, base+"/a", "dora")
			if r.Status != 503 || r.reason() != "quota_unavailable" {
				t.Errorf("%s: dora (fail closed) request %d: status %d (%q), want 503 quota_unavailable", phase, i+1, r.Status, r.reason())
			}
			r = keyGet(t, c, base+"/b", "fay")
			if r.Status != 200 || r.Echo == nil {
				t.Errorf("%s: fay (fail open) request %d: status %d (%q), want 200", phase, i+1, r.Status, r.reason())
			} else if v := r.Header.Get("X-Quota-Remaining"); v != "" {
				t.Errorf("%s: fay (fail open) request %d: X-Quota-Remaining %q, want none (nothing was counted)", phase, i+1, v)
			}
			admitted++
			r = keyGet(t, c, base+"/a", "gus")
			if r.Status != 429 || r.reason() != "quota_exceeded" {
				t.Errorf("%s: gus (over quota) request %d: status %d (%q), want 429 quota_exceeded", phase, i+1, r.Status, r.reason())
			}
		}
	}

	redis.Pause()
	down("redis stopped", 2)
	redis.Resume()
	// Redis answers again: a consumer that has not been counted yet starts at 4 left.
	ok := false
	for deadline := time.Now().Add(5 * time.Second); !ok && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		r := keyGet(t, c, base+"/b", "erik")
		ok = r.Status == 200 && r.Header.Get("X-Quota-Remaining") == "4"
		if r.Status == 200 {
			admitted++
		}
		if !ok && r.Status != 503 {
			t.Fatalf("erik after Redis resumed: status %d (%q), X-Quota-Remaining %q", r.Status, r.reason(), r.Header.Get("X-Quota-Remaining"))
		}
	}
	if !ok {
		t.Fatal("the quota did not recover within 5s after Redis resumed")
	}

	redis.Kill()
	down("redis killed", 5)
	if n := up.Hits.Load(); n != admitted {
		t.Errorf("the upstream saw %d requests, want %d", n, admitted)
	}
}
