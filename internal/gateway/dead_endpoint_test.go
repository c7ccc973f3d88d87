package gateway_test

import (
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestDeadEndpointEjectedByDefault: a service of two endpoints, one refusing connections, with no
// outlierDetection and no health check. The default detector ejects the dead endpoint after a few
// connect failures, which the route's retries absorb, so nearly every request succeeds; once the
// endpoint listens again, it is back in rotation when its ejection ends.
func TestDeadEndpointEjectedByDefault(t *testing.T) {
	good := startUpstream(t, "good", upstreamOptions{})
	dead := freeAddr(t) // nothing listens there: connections are refused
	gw := startGateway(t, retryConfig("127.0.0.1:0", "{attempts: 3, on: [connect_failure, gateway_error]}", good.Addr, dead))
	c := newClient(t)
	base := baseURL(t, gw, "public")

	const requests = 200
	failed := 0
	for i := 0; i < requests; i++ {
		r := get(t, c, base+"/x")
		if r.Status != http.StatusOK {
			failed++
			t.Logf("request %d: %d %s", i, r.Status, r.reason())
		}
	}
	if failed > 5 {
		t.Fatalf("%d of %d requests failed with one endpoint refusing connections; want at most 5", failed, requests)
	}
	if got := good.Hits.Load(); got != int64(requests-failed) {
		t.Errorf("the live endpoint served %d requests, want %d", got, requests-failed)
	}
	labels := map[string]string{"service": "app", "reason": "consecutive_connect_failures"}
	if n, ok := metricValue(t, gw, "meshgate_outlier_ejections_total", labels); !ok || n < 1 {
		t.Errorf("meshgate_outlier_ejections_total%v = %v (present %v), want at least 1", labels, n, ok)
	}
	if v, ok := metricValue(t, gw, "meshgate_outlier_ejected", map[string]string{"service": "app", "endpoint": dead}); !ok || v != 1 {
		t.Errorf("meshgate_outlier_ejected of the dead endpoint = %v (present %v), want 1", v, ok)
	}

	// The endpoint comes back on the same address: once its ejection (5s the first time) is over,
	// requests reach it again.
	ln, err := net.Listen("tcp", dead)
	if err != nil {
		t.Skipf("cannot listen on the dead endpoint's address again: %v", err)
	}
	var revived atomic.Int64
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			revived.Add(1)
			w.WriteHeader(http.StatusOK)
		}),
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-served
	})
	deadline := time.Now().Add(20 * time.Second)
	for revived.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the endpoint that came back received no request within 20s")
		}
		if r := get(t, c, base+"/x"); r.Status != http.StatusOK {
			t.Fatalf("while the endpoint comes back: %d %s", r.Status, r.reason())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
