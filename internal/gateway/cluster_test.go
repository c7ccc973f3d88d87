package gateway_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// countServers sends n GETs to url (with the extra header when name is not empty) and counts the
// answering upstreams by name. Any response other than an upstream's 200 fails the test.
func countServers(t *testing.T, c *http.Client, url string, n int, name, value string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for i := range n {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if name != "" {
			req.Header.Set(name, value)
		}
		r := do(t, c, req)
		if r.Status != 200 || r.Echo == nil {
			t.Fatalf("request %d of %d to %s: status %d reason %q", i+1, n, url, r.Status, r.reason())
		}
		counts[r.Echo.Server]++
	}
	return counts
}

// TestHealthChecks takes an endpoint out of rotation when its health check fails, brings it back
// when it passes, and answers 503 no_healthy_upstream when no endpoint is healthy.
func TestHealthChecks(t *testing.T) {
	t.Parallel()
	e1 := startUpstream(t, "e1", upstreamOptions{})
	e2 := startUpstream(t, "e2", upstreamOptions{})
	gw := startGateway(t, configHead+fmt.Sprintf(`listeners:
  - {name: edge, address: "127.0.0.1:0"}
routes:
  - name: all
    backends: [{service: hc}]
services:
  - name: hc
    endpoints: [{address: %q}, {address: %q}]
    healthCheck:
      http: {path: /healthz}
      interval: 50ms
      timeout: 45ms
      unhealthyThreshold: 2
      healthyThreshold: 2
`, e1.Addr, e2.Addr))
	url := baseURL(t, gw, "edge") + "/x"
	client := newClient(t)
	healthGauge := func(addr string) float64 {
		v, ok := metricValue(t, gw, "meshgate_endpoint_healthy", map[string]string{"service": "hc", "endpoint": addr})
		if !ok {
			return -1
		}
		return v
	}

	if c := countServers(t, client, url, 20, "", ""); c["e1"] == 0 || c["e2"] == 0 {
		t.Fatalf("both endpoints healthy: traffic %v; want both used", c)
	}

	e1.Healthy.Store(false)
	waitFor(t, 5*time.Second, "e1 never marked unhealthy", func() bool { return healthGauge(e1.Addr) == 0 })
	counts := map[string]int{}
	for i := range 200 {
		r := get(t, client, url)
		if r.Status != 200 || r.Echo == nil {
			t.Fatalf("e1 unhealthy: request %d of 200: status %d reason %q (health gauges now: e1 %v, e2 %v)",
				i+1, r.Status, r.reason(), healthGauge(e1.Addr), healthGauge(e2.Addr))
		}
		counts[r.Echo.Server]++
	}
	if counts["e2"] != 200 {
		t.Errorf("e1 unhealthy: traffic %v; want all 200 requests on e2", counts)
	}

	e1.Healthy.Store(true)
	waitFor(t, 5*time.Second, "e1 never marked healthy again", func() bool { return healthGauge(e1.Addr) == 1 })
	if c := countServers(t, client, url, 100, "", ""); c["e1"] < 25 || c["e2"] < 25 {
		t.Errorf("e1 healed: traffic %v; want both endpoints used about equally", c)
	}

	e1.Healthy.Store(false)
	e2.Healthy.Store(false)
	waitFor(t, 5*time.Second, "endpoints never both marked unhealthy", func() bool {
		return healthGauge(e1.Addr) == 0 && healthGauge(e2.Addr) == 0
	})
	r := get(t, client, url)
	if r.Status != 503 || r.reason() != "no_healthy_upstream" {
		t.Errorf("no healthy endpoint: status %d reason %q; want 503 no_healthy_upstream", r.Status, r.reason())
	}
}

// TestLoadBalancing checks the balancing policies as seen through the gateway.
func TestLoadBalancing(t *testing.T) {
	t.Parallel()
	e1 := startUpstream(t, "e1", upstreamOptions{})
	e2 := startUpstream(t, "e2", upstreamOptions{})
	e3 := startUpstream(t, "e3", upstreamOptions{})
	gw := startGateway(t, configHead+fmt.Sprintf(`listeners:
  - {name: edge, address: "127.0.0.1:0"}
routes:
  - {name: rr, match: [{path: {prefix: /rr}}], backends: [{service: rr}]}
  - {name: rh, match: [{path: {prefix: /rh}}], backends: [{service: rh}]}
  - {name: rnd, match: [{path: {prefix: /rnd}}], backends: [{service: rnd}]}
  - {name: lr, match: [{path: {prefix: /lr}}], backends: [{service: lr}]}
services:
  - name: rr
    endpoints: [{address: %[1]q, weight: 2}, {address: %[2]q, weight: 1}]
    loadBalancer: {policy: round_robin}
  - name: rh
    endpoints: [{address: %[1]q}, {address: %[2]q}, {address: %[3]q}]
    loadBalancer: {policy: ring_hash, hash: {header: x-user}}
  - name: rnd
    endpoints: [{address: %[1]q}, {address: %[2]q}, {address: %[3]q}]
    loadBalancer: {policy: random}
  - name: lr
    endpoints: [{address: %[1]q}, {address: %[2]q}, {address: %[3]q}]
    loadBalancer: {policy: least_request}
`, e1.Addr, e2.Addr, e3.Addr))
	base := baseURL(t, gw, "edge")

	t.Run("round_robin 2:1", func(t *testing.T) {
		t.Parallel()
		c := countServers(t, newClient(t), base+"/rr", 300, "", "")
		if c["e1"] < 197 || c["e1"] > 203 || c["e1"]+c["e2"] != 300 {
			t.Errorf("traffic %v; want 200 on e1 and 100 on e2", c)
		}
	})
	t.Run("ring_hash on x-user", func(t *testing.T) {
		t.Parallel()
		client := newClient(t)
		used := map[string]bool{}
		for k := range 30 {
			user := fmt.Sprintf("user-%d", k)
			c := countServers(t, client, base+"/rh", 5, "x-user", user)
			if len(c) != 1 {
				t.Errorf("key %s spread over %v; want one endpoint", user, c)
			}
			for s := range c {
				used[s] = true
			}
		}
		if len(used) < 2 {
			t.Errorf("30 keys all landed on %v; want them spread", used)
		}
	})
	for _, policy := range []string{"rnd", "lr"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			c := countServers(t, newClient(t), base+"/"+policy, 300, "", "")
			for _, s := range []string{"e1", "e2", "e3"} {
				// Expected 100 each; 50 is more than six standard deviations below.
				if c[s] < 50 {
					t.Errorf("traffic %v; want every endpoint to get a fair share", c)
					break
				}
			}
		})
	}
}
