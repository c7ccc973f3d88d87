package gateway_test

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// failing answers every request with status, and the Retry-After value when set.
func failing(status int, retryAfter string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte("failing\n"))
	})
}

func retryConfig(addr, retry string, endpoints ...string) string {
	eps := ""
	for _, e := range endpoints {
		eps += fmt.Sprintf("{address: %q}, ", e)
	}
	return fmt.Sprintf(`version: 1
admin: {address: "off"}
accessLog: {path: "off"}
listeners: [{name: public, address: %q}]
routes:
  - name: api
    backends: [{service: app}]
    timeout: 5s
    retry: %s
services:
  - name: app
    endpoints: [%s]
    loadBalancer: {policy: round_robin}
`, addr, retry, eps)
}

// TestRetryOneBadEndpointOfThree: with one endpoint of three answering 503, clients see no error.
// Round robin sends the retry to the next endpoint, so every other request meets the bad one: the
// budget must allow that much (the default 20% would, rightly, refuse).
func TestRetryOneBadEndpointOfThree(t *testing.T) {
	bad := startUpstream(t, "bad", upstreamOptions{Handler: failing(503, "")})
	good1 := startUpstream(t, "good1", upstreamOptions{})
	good2 := startUpstream(t, "good2", upstreamOptions{})
	gw := startGateway(t, retryConfig("127.0.0.1:0", "{attempts: 3, on: [gateway_error], backoff: {base: 1ms, max: 5ms}, budget: {percent: 100}}", bad.Addr, good1.Addr, good2.Addr))
	c := newClient(t)
	base := baseURL(t, gw, "public")
	for i := 0; i < 300; i++ {
		if r := get(t, c, base+"/x"); r.Status != 200 {
			t.Fatalf("request %d: status %d (%s), want 200", i, r.Status, r.reason())
		}
	}
	if bad.Hits.Load() == 0 {
		t.Fatal("the bad endpoint was never tried; the test proves nothing")
	}
	if v, _ := metricValue(t, gw, "meshgate_retry_attempts_total", map[string]string{"route": "api", "service": "app", "reason": "status"}); v != float64(bad.Hits.Load()) {
		t.Errorf("retries metric = %v, want %d (one per 503)", v, bad.Hits.Load())
	}
}

// TestRetryBudgetCapsAStorm: against a backend that always fails, retries stay within the budget.
func TestRetryBudgetCapsAStorm(t *testing.T) {
	bad := startUpstream(t, "bad", upstreamOptions{Handler: failing(503, "")})
	gw := startGateway(t, retryConfig("127.0.0.1:0",
		"{attempts: 5, on: [gateway_error], backoff: {base: 1ms, max: 2ms}, budget: {percent: 20, minPerSecond: 1}}", bad.Addr))
	base := baseURL(t, gw, "public")
	const requests = 400
	var wg sync.WaitGroup
	var non503 atomic.Int64
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(t)
			for i := 0; i < requests/8; i++ {
				resp, err := c.Get(base + "/x")
				if err != nil {
					non503.Add(1)
					continue
				}
				r, _ := readResult(resp)
				if r.Status != 503 {
					non503.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := non503.Load(); n != 0 {
		t.Fatalf("%d requests did not get the upstream's 503", n)
	}
	// The budget allows retries of 20% of requests, or 10 over the 10 s window, whichever is more.
	retries := bad.Hits.Load() - requests
	if allowed := int64(requests * 20 / 100); retries > allowed+2 || retries < allowed/2 {
		t.Fatalf("upstream saw %d retries for %d requests; the budget allows about %d (without it: %d)", retries, requests, allowed, requests*4)
	}
	if v, _ := metricValue(t, gw, "meshgate_retry_budget_exhausted_total", map[string]string{"route": "api", "service": "app"}); v == 0 {
		t.Error("no budget exhaustion was counted")
	}
	t.Logf("%d requests, %d retries sent (budget 20%%), upstream hits %d", requests, retries, bad.Hits.Load())
}

// TestRetryConnectFailure: an endpoint that refuses connections is retried on another, for any
// method: the request never reached an application.
func TestRetryConnectFailure(t *testing.T) {
	good := startUpstream(t, "good", upstreamOptions{})
	dead := freeAddr(t)
	gw := startGateway(t, retryConfig("127.0.0.1:0", "{attempts: 2, backoff: {base: 1ms, max: 2ms}}", dead, good.Addr))
	c := newClient(t)
	base := baseURL(t, gw, "public")
	for i := 0; i < 20; i++ {
		req, _ := http.NewRequest("POST", base+"/p", bytes.NewReader([]byte("payload")))
		if r := do(t, c, req); r.Status != 200 || r.Echo == nil || r.Echo.BodyLen != 7 {
			t.Fatalf("POST %d: status %d (%s)", i, r.Status, r.reason())
		}
	}
}

// TestRetryMethodsAndBodies: a POST is not retried on a 503 unless the policy allows
// non-idempotent retries; when it does, the body is replayed intact to the next endpoint.
func TestRetryMethodsAndBodies(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 3000) // 30 kB: fits the replay buffer
	for _, tc := range []struct {
		desc      string
		retry     string
		wantCode  int
		wantTries int64
	}{
		{"post not retried by default", "{attempts: 3, on: [gateway_error], backoff: {base: 1ms, max: 2ms}}", 503, 1},
		{"post retried when allowed", "{attempts: 3, on: [gateway_error], nonIdempotent: true, backoff: {base: 1ms, max: 2ms}}", 200, 1},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			bad := startUpstream(t, "bad", upstreamOptions{Handler: failing(503, "")})
			good := startUpstream(t, "good", upstreamOptions{})
			gw := startGateway(t, retryConfig("127.0.0.1:0", tc.retry, bad.Addr, good.Addr))
			c := newClient(t)
			req, _ := http.NewRequest("POST", baseURL(t, gw, "public")+"/p", bytes.NewReader(body))
			r := do(t, c, req)
			if r.Status != tc.wantCode || bad.Hits.Load() != tc.wantTries {
				t.Fatalf("status %d, bad endpoint tried %d times; want %d and %d", r.Status, bad.Hits.Load(), tc.wantCode, tc.wantTries)
			}
			if r.Status == 200 && (r.Echo == nil || r.Echo.BodySHA256 != sha256Hex(body)) {
				t.Fatal("the retried body did not arrive intact")
			}
		})
	}
}

// TestRetryPerTryTimeout: an attempt that hangs is cut at the per-try timeout and retried on
// another endpoint, well before the route timeout.
func TestRetryPerTryTimeout(t *testing.T) {
	slow := startUpstream(t, "slow", upstreamOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	})})
	fast := startUpstream(t, "fast", upstreamOptions{})
	gw := startGateway(t, retryConfig("127.0.0.1:0", "{attempts: 2, perTryTimeout: 200ms, backoff: {base: 1ms, max: 2ms}}", slow.Addr, fast.Addr))
	c := newClient(t)
	base := baseURL(t, gw, "public")
	for i := 0; i < 4; i++ {
		start := time.Now()
		r := get(t, c, base+"/x")
		if r.Status != 200 || r.Echo == nil || r.Echo.Server != "fast" {
			t.Fatalf("request %d: status %d (%s)", i, r.Status, r.reason())
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("request %d took %v; the per-try timeout did not cut the slow attempt", i, d)
		}
	}
}

// TestRetryAfterBeyondTheCap: a 503 asking for a wait longer than the backoff cap is passed on,
// not retried early.
func TestRetryAfterBeyondTheCap(t *testing.T) {
	busy := startUpstream(t, "busy", upstreamOptions{Handler: failing(503, "30")})
	gw := startGateway(t, retryConfig("127.0.0.1:0", "{attempts: 3, backoff: {base: 1ms, max: 100ms}}", busy.Addr))
	r := get(t, newClient(t), baseURL(t, gw, "public")+"/x")
	if r.Status != 503 || r.Header.Get("Retry-After") != "30" || busy.Hits.Load() != 1 {
		t.Fatalf("status %d, Retry-After %q, tried %d times; want 503, 30, 1", r.Status, r.Header.Get("Retry-After"), busy.Hits.Load())
	}
}
