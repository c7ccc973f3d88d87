package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// resilienceConfig is a config with one route to service app over endpoints, whose service
// section gets the extra YAML lines svc (indented for a service's keys).
func resilienceConfig(addr, svc string, endpoints ...string) string {
	eps := make([]string, len(endpoints))
	for i, e := range endpoints {
		eps[i] = fmt.Sprintf("{address: %q}", e)
	}
	return fmt.Sprintf(`version: 1
admin: {address: "off"}
accessLog: {path: "off"}
listeners: [{name: public, address: %q}]
routes:
  - name: api
    backends: [{service: app}]
    timeout: 10s
services:
  - name: app
    endpoints: [%s]
    loadBalancer: {policy: round_robin}
%s`, addr, strings.Join(eps, ", "), svc)
}

// switchable answers 503 while fail is set and otherwise echoes, after delay.
func switchable(name string, fail *atomic.Bool, delay time.Duration) http.Handler {
	echo := echoHandler(name)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		if fail.Load() {
			w.Header().Set("X-Server", name)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		echo.ServeHTTP(w, r)
	})
}

// getAsync sends a GET with c on a goroutine of its own and delivers the response, or a result
// with status 0 and the error text as its body when the exchange failed.
func getAsync(c *http.Client, url string) <-chan *result {
	ch := make(chan *result, 1)
	go func() {
		start := time.Now()
		resp, err := c.Get(url)
		if err != nil {
			ch <- &result{Body: []byte(err.Error()), Header: http.Header{}}
			return
		}
		r, err := readResult(resp)
		if err != nil {
			r.Status, r.Body = 0, []byte(err.Error())
		}
		r.Header.Set("X-Test-Took", time.Since(start).String())
		ch <- r
	}()
	return ch
}

// took returns how long the exchange of a result from getAsync took.
func (r *result) took() time.Duration {
	d, _ := time.ParseDuration(r.Header.Get("X-Test-Took"))
	return d
}

// timedGet sends a GET and returns the response and how long it took.
func timedGet(t *testing.T, c *http.Client, url string) (*result, time.Duration) {
	t.Helper()
	start := time.Now()
	r := get(t, c, url)
	return r, time.Since(start)
}

// TestOutlierDetectionEjectsABadEndpoint: one endpoint of three answers 503. Clients see its
// errors only until it has failed consecutive5xx times in a row; then it is ejected and every
// request succeeds. Once it heals it comes back after the ejection time.
func TestOutlierDetectionEjectsABadEndpoint(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	bad := startUpstream(t, "bad", upstreamOptions{Handler: switchable("bad", &failing, 0)})
	good1 := startUpstream(t, "good1", upstreamOptions{})
	good2 := startUpstream(t, "good2", upstreamOptions{})
	const ejection = time.Second
	gw := startGateway(t, resilienceConfig("127.0.0.1:0", `    outlierDetection:
      consecutive5xx: 3
      interval: 50ms
      baseEjectionTime: 1s
      maxEjectionPercent: 34
`, good1.Addr, bad.Addr, good2.Addr))
	c := newClient(t)
	url := baseURL(t, gw, "public") + "/x"
	errs := 0
	var ejectedAt time.Time
	for i := range 60 {
		r := get(t, c, url)
		switch {
		case r.Status == 503 && r.Header.Get("X-Server") == "bad":
			errs++
			ejectedAt = time.Now()
		case r.Status != 200:
			t.Fatalf("request %d: status %d (%s)", i, r.Status, r.reason())
		}
	}
	if errs != 3 || bad.Hits.Load() != 3 {
		t.Fatalf("clients saw %d errors and the bad endpoint %d requests; want 3 and 3 (ejected after 3 in a row)", errs, bad.Hits.Load())
	}
	t.Logf("60 requests: %d failed before the ejection, none after", errs)
	labels := map[string]string{"service": "app", "reason": "consecutive_5xx"}
	if v, _ := metricValue(t, gw, "meshgate_outlier_ejections_total", labels); v != 1 {
		t.Errorf("meshgate_outlier_ejections_total = %v, want 1", v)
	}
	ejected := map[string]string{"service": "app", "endpoint": bad.Addr}
	if v, _ := metricValue(t, gw, "meshgate_outlier_ejected", ejected); v != 1 {
		t.Errorf("meshgate_outlier_ejected = %v, want 1", v)
	}

	// The endpoint heals; it receives traffic again once its ejection time is up.
	failing.Store(false)
	var back time.Duration
	waitFor(t, 5*time.Second, "the healed endpoint never came back", func() bool {
		r := get(t, c, url)
		if r.Status != 200 {
			t.Fatalf("status %d (%s) while the endpoint was healing", r.Status, r.reason())
		}
		back = time.Since(ejectedAt)
		return r.Echo != nil && r.Echo.Server == "bad"
	})
	if back < ejection-100*time.Millisecond {
		t.Fatalf("the ejected endpoint was back after %v, before its ejection time of %v", back, ejection)
	}
	t.Logf("the healed endpoint was back %v after its ejection (ejection time %v, reviews every 50ms)", back, ejection)
	if v, _ := metricValue(t, gw, "meshgate_outlier_ejected", ejected); v != 0 {
		t.Errorf("meshgate_outlier_ejected = %v after the ejection ended, want 0", v)
	}
}

// TestCircuitBreakerOpensHalfOpensAndCloses: after consecutive failures the breaker refuses
// requests at once, without waiting for the slow upstream; after openFor it lets one probe
// through, opens again when the probe fails and closes when it succeeds.
func TestCircuitBreakerOpensHalfOpensAndCloses(t *testing.T) {
	const delay = 200 * time.Millisecond
	const openFor = 400 * time.Millisecond
	var failing atomic.Bool
	failing.Store(true)
	up := startUpstream(t, "up", upstreamOptions{Handler: switchable("up", &failing, delay)})
	gw := startGateway(t, resilienceConfig("127.0.0.1:0", `    circuitBreaker:
      consecutiveFailures: 3
      openFor: 400ms
      halfOpenRequests: 1
`, up.Addr))
	c := newClient(t)
	url := baseURL(t, gw, "public") + "/x"
	open := map[string]string{"service": "app"}
	for i := range 3 {
		if r, d := timedGet(t, c, url); r.Status != 503 || r.reason() != "" || d < delay {
			t.Fatalf("request %d: status %d (%q) after %v; want the upstream's own 503 after its delay", i, r.Status, r.reason(), d)
		}
	}
	// Open: refused at once.
	r, d := timedGet(t, c, url)
	if r.Status != 503 || r.reason() != "circuit_open" {
		t.Fatalf("after 3 failures: status %d (%q), want 503 circuit_open", r.Status, r.reason())
	}
	if d > delay/4 {
		t.Fatalf("the open breaker took %v to refuse; the upstream takes %v", d, delay)
	}
	t.Logf("open breaker refused in %v (upstream delay %v)", d, delay)
	if up.Hits.Load() != 3 {
		t.Fatalf("the upstream saw %d requests, want 3", up.Hits.Load())
	}
	if v, _ := metricValue(t, gw, "meshgate_circuit_breaker_open", open); v != 1 {
		t.Errorf("meshgate_circuit_breaker_open = %v, want 1", v)
	}
	if v, _ := metricValue(t, gw, "meshgate_circuit_breaker_rejected_total", map[string]string{"service": "app", "threshold": "consecutive_failures"}); v != 1 {
		t.Errorf("rejections by consecutive_failures = %v, want 1", v)
	}

	// Half-open with the upstream still failing: the probe fails and the breaker opens again.
	time.Sleep(openFor)
	if r, _ := timedGet(t, c, url); r.Status != 503 || r.reason() != "" {
		t.Fatalf("probe: status %d (%q), want the upstream's 503", r.Status, r.reason())
	}
	if r, d := timedGet(t, c, url); r.reason() != "circuit_open" || d > delay/4 {
		t.Fatalf("after a failed probe: status %d (%q) in %v, want circuit_open at once", r.Status, r.reason(), d)
	}
	if up.Hits.Load() != 4 {
		t.Fatalf("the upstream saw %d requests, want 4 (one probe)", up.Hits.Load())
	}

	// The upstream recovers: the next probe succeeds and the breaker closes.
	failing.Store(false)
	time.Sleep(openFor)
	for i := range 5 {
		if r := get(t, c, url); r.Status != 200 {
			t.Fatalf("request %d after recovery: status %d (%q)", i, r.Status, r.reason())
		}
	}
	if v, _ := metricValue(t, gw, "meshgate_circuit_breaker_open", open); v != 0 {
		t.Errorf("meshgate_circuit_breaker_open = %v after closing, want 0", v)
	}
}

// TestCircuitBreakerMaxRequests: with maxRequests 2 and two slow requests in flight, a third is
// refused at once.
func TestCircuitBreakerMaxRequests(t *testing.T) {
	const delay = time.Second
	up := startUpstream(t, "up", upstreamOptions{})
	gw := startGateway(t, resilienceConfig("127.0.0.1:0", `    circuitBreaker: {maxRequests: 2}
`, up.Addr))
	url := baseURL(t, gw, "public") + "/x"
	slow := fmt.Sprintf("%s?delay=%s", url, delay)
	slowOnes := []<-chan *result{getAsync(newClient(t), slow), getAsync(newClient(t), slow)}
	waitFor(t, 5*time.Second, "the two slow requests did not reach the upstream", func() bool { return up.Hits.Load() == 2 })
	r, d := timedGet(t, newClient(t), url)
	if r.Status != 503 || r.reason() != "circuit_open" {
		t.Fatalf("third request: status %d (%q), want 503 circuit_open", r.Status, r.reason())
	}
	if d > delay/10 {
		t.Fatalf("the third request was refused after %v; the slow ones take %v", d, delay)
	}
	t.Logf("third concurrent request refused in %v (upstream delay %v)", d, delay)
	for i, ch := range slowOnes {
		if r := <-ch; r.Status != 200 {
			t.Fatalf("slow request %d: status %d (%q) %s", i, r.Status, r.reason(), r.Body)
		}
	}
	if v, _ := metricValue(t, gw, "meshgate_circuit_breaker_rejected_total", map[string]string{"service": "app", "threshold": "max_requests"}); v != 1 {
		t.Errorf("rejections by max_requests = %v, want 1", v)
	}
	// With the slow requests over, requests flow again.
	if r := get(t, newClient(t), url); r.Status != 200 {
		t.Fatalf("after the slow requests: status %d (%q)", r.Status, r.reason())
	}
}

// TestCircuitBreakerConnectionsAndPending: with one connection allowed and one request allowed
// to wait for it, of two more requests while the connection is busy one waits (and is served on
// the same connection) and the other is refused at once.
func TestCircuitBreakerConnectionsAndPending(t *testing.T) {
	const delay = 500 * time.Millisecond
	up := startUpstream(t, "up", upstreamOptions{})
	gw := startGateway(t, resilienceConfig("127.0.0.1:0", `    circuitBreaker: {maxConnections: 1, maxPendingRequests: 1}
`, up.Addr))
	url := baseURL(t, gw, "public") + "/x"
	slow := fmt.Sprintf("%s?delay=%s", url, delay)
	first := getAsync(newClient(t), slow)
	waitFor(t, 5*time.Second, "the first request did not reach the upstream", func() bool { return up.Hits.Load() == 1 })
	second, third := getAsync(newClient(t), url), getAsync(newClient(t), url)
	a, b := <-second, <-third
	if a.Status == 200 {
		a, b = b, a
	}
	if a.Status != 503 || a.reason() != "circuit_open" || a.took() > delay/4 {
		t.Fatalf("the request beyond maxPendingRequests: status %d (%q) after %v, want 503 circuit_open at once", a.Status, a.reason(), a.took())
	}
	if b.Status != 200 {
		t.Fatalf("the waiting request: status %d (%q) %s, want 200", b.Status, b.reason(), b.Body)
	}
	if r := <-first; r.Status != 200 {
		t.Fatalf("the first request: status %d (%q) %s", r.Status, r.reason(), r.Body)
	}
	if n := up.NewConns.Load(); n != 1 {
		t.Fatalf("the upstream accepted %d connections, want 1 (maxConnections)", n)
	}
	t.Logf("refused in %v; the waiting request was served in %v on the one connection", a.took(), b.took())
	if v, _ := metricValue(t, gw, "meshgate_circuit_breaker_rejected_total", map[string]string{"service": "app", "threshold": "max_pending_requests"}); v != 1 {
		t.Errorf("rejections by max_pending_requests = %v, want 1", v)
	}
}

// TestCircuitBreakerMaxRetries: with maxRetries 1, of two requests whose first attempts fail at
// the same moment only one is retried; the other's retry is refused with circuit_open. Retries are
// told from first attempts by the exchange's attempt count, which the retry policy sets.
func TestCircuitBreakerMaxRetries(t *testing.T) {
	const delay = 300 * time.Millisecond
	var failing atomic.Bool
	failing.Store(true)
	up := startUpstream(t, "up", upstreamOptions{Handler: switchable("up", &failing, delay)})
	cfg := retryConfig("127.0.0.1:0", "{attempts: 2, on: [gateway_error], backoff: {base: 1ms, max: 2ms}, budget: {percent: 100}}", up.Addr) +
		"    circuitBreaker: {maxRetries: 1}\n"
	gw := startGateway(t, cfg)
	url := baseURL(t, gw, "public") + "/x"
	a, b := getAsync(newClient(t), url), getAsync(newClient(t), url)
	ra, rb := <-a, <-b
	if ra.reason() == "circuit_open" {
		ra, rb = rb, ra
	}
	if ra.Status != 503 || ra.reason() != "" || rb.Status != 503 || rb.reason() != "circuit_open" {
		t.Fatalf("got %d (%q) and %d (%q); want the upstream's 503 after a retry, and circuit_open", ra.Status, ra.reason(), rb.Status, rb.reason())
	}
	if n := up.Hits.Load(); n != 3 {
		t.Fatalf("the upstream saw %d attempts, want 3 (two first attempts, one retry)", n)
	}
	if v, _ := metricValue(t, gw, "meshgate_circuit_breaker_rejected_total", map[string]string{"service": "app", "threshold": "max_retries"}); v != 1 {
		t.Errorf("rejections by max_retries = %v, want 1", v)
	}
}
