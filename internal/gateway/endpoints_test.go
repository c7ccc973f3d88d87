package gateway_test

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/gateway"
)

// churnConfig is a config whose service "churn" has the given upstreams as endpoints (none: a
// mesh service with discovery and no workload yet), with a health check and outlier detection so
// that their state has something to keep. The health check probes each endpoint once, within a
// second of its arrival (on a connection of its own), and then not again during a test.
func churnConfig(ups ...*upstream) string {
	var eps []string
	for _, u := range ups {
		eps = append(eps, fmt.Sprintf("{address: %q}", u.Addr))
	}
	return configHead + fmt.Sprintf(`listeners:
  - {name: edge, address: "127.0.0.1:0"}
routes:
  - name: churn
    backends: [{service: churn}]
services:
  - name: churn
    discovery: {}
    endpoints: [%s]
    healthCheck: {interval: 1h, timeout: 1s, http: {path: /healthz}}
    outlierDetection: {consecutive5xx: 5}
`, strings.Join(eps, ", "))
}

// healthSeries returns the endpoints of service svc that have a meshgate_endpoint_healthy series.
func healthSeries(t *testing.T, gw *gateway.Gateway, svc string) []string {
	t.Helper()
	mfs, err := gw.Metrics().Prom.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "meshgate_endpoint_healthy" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var s, ep string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "service":
					s = l.GetValue()
				case "endpoint":
					ep = l.GetValue()
				}
			}
			if s == svc {
				out = append(out, ep)
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestEndpointChurnUnderLoad(t *testing.T) {
	const (
		workers    = 4
		iterations = 60
	)
	stable := startUpstream(t, "stable", upstreamOptions{})
	others := []*upstream{
		startUpstream(t, "b", upstreamOptions{}),
		startUpstream(t, "c", upstreamOptions{}),
		startUpstream(t, "d", upstreamOptions{}),
	}
	// sets[i] is the endpoint list of update i: the stable upstream always, in changing
	// positions, with a changing subset of the others.
	sets := func(i int) []*upstream {
		var ups []*upstream
		for k, u := range others {
			if (i>>k)&1 == 1 {
				ups = append(ups, u)
			}
		}
		pos := i % (len(ups) + 1)
		return slices.Insert(ups, pos, stable)
	}
	gw := startGateway(t, churnConfig(sets(0)...))
	url := baseURL(t, gw, "edge") + "/"

	var sent, failed atomic.Int64
	var firstErr atomic.Pointer[string]
	fail := func(msg string) {
		failed.Add(1)
		firstErr.CompareAndSwap(nil, &msg)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	warm := make(chan struct{}, workers)
	for range workers {
		c := newClient(t)
		wg.Go(func() {
			deadline := time.Now().Add(30 * time.Second)
			for i := 0; !stop.Load() && i < 100_000 && time.Now().Before(deadline); i++ {
				if i == 20 {
					warm <- struct{}{}
				}
				sent.Add(1)
				resp, err := c.Get(url)
				if err != nil {
					fail(err.Error())
					continue
				}
				r, err := readResult(resp)
				switch {
				case err != nil:
					fail(err.Error())
				case r.Status != http.StatusOK || r.Echo == nil:
					fail(fmt.Sprintf("status %d, reason %q", r.Status, r.reason()))
				}
			}
		})
	}
	for range workers {
		select {
		case <-warm:
		case <-time.After(10 * time.Second):
			stop.Store(true)
			wg.Wait()
			t.Fatal("load did not warm up")
		}
	}
	// The gateway's pool to the stable upstream is warm: from now on it must not need more
	// connections than requests in flight at once, however many updates come.
	connsBefore := stable.NewConns.Load()
	hitsBefore := stable.Hits.Load()
	for i := 1; i <= iterations; i++ {
		reload(t, gw, churnConfig(sets(i)...))
		time.Sleep(3 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // traffic on the final set
	stop.Store(true)
	wg.Wait()

	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed across %d endpoint updates; first: %s", n, sent.Load(), iterations, *firstErr.Load())
	}
	newConns := stable.NewConns.Load() - connsBefore
	hits := stable.Hits.Load() - hitsBefore
	t.Logf("%d requests, %d endpoint updates; the stable upstream served %d of them on %d new connections",
		sent.Load(), iterations, hits, newConns)
	if hits < iterations {
		t.Fatalf("the stable upstream served only %d requests during the updates", hits)
	}
	if newConns > workers+1 {
		t.Fatalf("the stable upstream accepted %d new connections during %d endpoint updates, want at most %d (one per concurrent request, and its health probe)",
			newConns, iterations, workers+1)
	}
	// The endpoint health series follow the final set exactly.
	var want []string
	for _, u := range sets(iterations) {
		want = append(want, u.Addr)
	}
	slices.Sort(want)
	if got := healthSeries(t, gw, "churn"); !slices.Equal(got, want) {
		t.Fatalf("meshgate_endpoint_healthy series %v, want %v", got, want)
	}
}

// connCounter is an echo upstream that counts the connections it accepted and saw closed.
type connCounter struct {
	*upstream
	opened, closed atomic.Int64
}

func startConnCounter(t *testing.T, name string) *connCounter {
	t.Helper()
	cc := &connCounter{upstream: &upstream{Name: name}}
	srv := httptest.NewUnstartedServer(echoHandler(name))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			cc.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			cc.closed.Add(1)
		}
	}
	srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	srv.Start()
	t.Cleanup(srv.Close)
	cc.srv, cc.Addr = srv, srv.Listener.Addr().String()
	return cc
}

func TestRemovedEndpointIdleConnectionsClosed(t *testing.T) {
	// Removing an endpoint closes the gateway's idle connections to it at once, not after the
	// pool's idle timeout; the endpoint that stays keeps its connections.
	a := startConnCounter(t, "a")
	b := startConnCounter(t, "b")
	gw := startGateway(t, churnConfig(a.upstream, b.upstream))
	c := newClient(t)
	url := baseURL(t, gw, "edge") + "/"
	served := map[string]int{}
	for range 20 {
		r := get(t, c, url)
		if r.Status != http.StatusOK || r.Echo == nil {
			t.Fatalf("status %d, reason %q", r.Status, r.reason())
		}
		served[r.Echo.Server]++
	}
	if served["a"] == 0 || served["b"] == 0 || b.opened.Load() == 0 {
		t.Fatalf("served %v; b opened %d connections", served, b.opened.Load())
	}
	aOpened := a.opened.Load()
	reload(t, gw, churnConfig(a.upstream))
	deadline := time.Now().Add(5 * time.Second)
	for b.closed.Load() < b.opened.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("the removed endpoint has %d of %d connections still open", b.opened.Load()-b.closed.Load(), b.opened.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for range 10 {
		if r := get(t, c, url); r.Status != http.StatusOK || r.Echo == nil || r.Echo.Server != "a" {
			t.Fatalf("after the removal: status %d, reason %q", r.Status, r.reason())
		}
	}
	// The endpoint that stayed serves on the connection it had (its health probe, on a
	// connection of its own, may fall in between).
	if n := a.opened.Load() - aOpened; n > 1 {
		t.Fatalf("the endpoint that stayed opened %d new connections", n)
	}
}

func TestZeroEndpointService(t *testing.T) {
	// With every per-service part configured (health check, outlier detection, circuit breaker,
	// adaptive concurrency), a service with no endpoints answers 503 with the reason code for no
	// healthy endpoint, and serves once an update brings one.
	withAll := func(yaml string) string {
		return yaml + "    circuitBreaker: {maxRequests: 100}\n    adaptiveConcurrency: {initialLimit: 50, minLimit: 10}\n"
	}
	gw := startGateway(t, withAll(churnConfig()))
	c := newClient(t)
	url := baseURL(t, gw, "edge") + "/"
	for range 50 {
		r := get(t, c, url)
		if r.Status != http.StatusServiceUnavailable || r.reason() != "no_healthy_upstream" {
			t.Fatalf("zero endpoints: status %d, reason %q; want 503 no_healthy_upstream", r.Status, r.reason())
		}
	}
	if got := healthSeries(t, gw, "churn"); len(got) != 0 {
		t.Fatalf("health series %v for a service with no endpoints", got)
	}
	u := startUpstream(t, "late", upstreamOptions{})
	reload(t, gw, withAll(churnConfig(u)))
	r := get(t, c, url)
	if r.Status != http.StatusOK || r.Echo == nil || r.Echo.Server != "late" {
		t.Fatalf("after the update: status %d, reason %q", r.Status, r.reason())
	}
	// And back to none: 503 again, and the series is gone.
	reload(t, gw, withAll(churnConfig()))
	if r := get(t, c, url); r.Status != http.StatusServiceUnavailable || r.reason() != "no_healthy_upstream" {
		t.Fatalf("emptied again: status %d, reason %q", r.Status, r.reason())
	}
	if got := healthSeries(t, gw, "churn"); len(got) != 0 {
		t.Fatalf("health series %v after the last endpoint left", got)
	}
}
