package gateway_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// capacityHandler serves at most slots requests at once, each taking work; the rest queue, as
// an overloaded backend's requests do. It records the most requests it held at once (queued
// included).
func capacityHandler(slots int, work time.Duration, held, maxHeld *atomic.Int64) http.Handler {
	sem := make(chan struct{}, slots)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := held.Add(1)
		defer held.Add(-1)
		for old := maxHeld.Load(); n > old && !maxHeld.CompareAndSwap(old, n); old = maxHeld.Load() {
		}
		select {
		case sem <- struct{}{}:
		case <-r.Context().Done():
			return
		}
		defer func() { <-sem }()
		time.Sleep(work)
		_, _ = w.Write([]byte("ok"))
	})
}

// TestAdaptiveConcurrency: 32 clients press a backend that serves 4 requests at once. The
// service's adaptive concurrency limit, starting at 24, learns that queueing raises latency and
// brings the requests in flight down below its start, shedding the rest at once with 503
// concurrency_limited; every admitted request succeeds; the metrics agree with what clients saw.
func TestAdaptiveConcurrency(t *testing.T) {
	t.Parallel()
	var held, maxHeld atomic.Int64
	up := startUpstream(t, "up", upstreamOptions{Handler: capacityHandler(4, 10*time.Millisecond, &held, &maxHeld)})
	gw := startGateway(t, configHead+fmt.Sprintf(`listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: api
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: %q}]
    adaptiveConcurrency: {initialLimit: 24, minLimit: 2, maxLimit: 64, sampleWindow: 50ms}
`, up.Addr))
	url := baseURL(t, gw, "public") + "/x"
	const clients, perClient = 32, 60
	var ok, shed, other atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(t)
			for j := 0; j < perClient; j++ {
				r, err := c.Get(url)
				if err != nil {
					other.Add(1)
					continue
				}
				res, _ := readResult(r)
				switch {
				case res.Status == 200:
					ok.Add(1)
				case res.Status == 503 && res.reason() == "concurrency_limited":
					shed.Add(1)
					time.Sleep(2 * time.Millisecond) // a refused client backs off a little
				default:
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("admitted %d, shed %d, other %d; the backend held at most %d requests at once", ok.Load(), shed.Load(), other.Load(), maxHeld.Load())
	if other.Load() != 0 {
		t.Fatalf("%d requests neither succeeded nor were shed", other.Load())
	}
	if shed.Load() == 0 || ok.Load() == 0 {
		t.Fatalf("admitted %d, shed %d: the limit neither shed nor admitted", ok.Load(), shed.Load())
	}
	if m := maxHeld.Load(); m >= clients {
		t.Fatalf("the backend held %d requests at once: the limit did not keep the 32 clients off it", m)
	}
	limit, _ := metricValue(t, gw, "meshgate_adaptive_concurrency_limit", map[string]string{"service": "app"})
	t.Logf("final adaptive limit %v", limit)
	// The limit started at 24, six times what the backend serves at once: it must have come down
	// (to two or three times that), not learned the queue it made as the backend's latency.
	if limit < 2 || limit >= 24 {
		t.Fatalf("the adaptive limit is %v; want from minLimit 2 to below initialLimit 24", limit)
	}
	if v, _ := metricValue(t, gw, "meshgate_adaptive_concurrency_limited_total", map[string]string{"service": "app"}); int64(v) != shed.Load() {
		t.Fatalf("meshgate_adaptive_concurrency_limited_total = %v, clients saw %d", v, shed.Load())
	}
}
