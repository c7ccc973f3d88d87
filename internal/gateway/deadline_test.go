package gateway_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestClientDeadlinePropagates: a client's grpc-timeout or X-Meshgate-Timeout-Ms cuts a slow
// request short of the route timeout, and the upstream receives the time left.
func TestClientDeadlinePropagates(t *testing.T) {
	up := startUpstream(t, "up", upstreamOptions{})
	gw := startGateway(t, retryConfig("127.0.0.1:0", "{attempts: 1}", up.Addr))
	c := newClient(t)
	base := baseURL(t, gw, "public")

	req, _ := http.NewRequest("GET", base+"/x?delay=3s", nil)
	req.Header.Set("X-Meshgate-Timeout-Ms", "200")
	start := time.Now()
	r := do(t, c, req)
	if r.Status != 504 || r.reason() != "upstream_timeout" {
		t.Fatalf("status %d (%s), want 504 upstream_timeout", r.Status, r.reason())
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v; the client's 200ms deadline was not honoured", d)
	}

	req, _ = http.NewRequest("GET", base+"/x", nil)
	req.Header.Set("Grpc-Timeout", "900m")
	req.Header.Set("X-Meshgate-Timeout-Ms", "800")
	r = do(t, c, req)
	if r.Status != 200 || r.Echo == nil {
		t.Fatalf("status %d (%s)", r.Status, r.reason())
	}
	ms, err := strconv.Atoi(r.Echo.Header.Get("X-Meshgate-Timeout-Ms"))
	if err != nil || ms > 800 || ms < 1 {
		t.Errorf("upstream saw X-Meshgate-Timeout-Ms %q, want the time left, at most 800", r.Echo.Header.Get("X-Meshgate-Timeout-Ms"))
	}
	// Both headers bound the request to 800ms: grpc-timeout must have been rewritten too.
	if g := r.Echo.Header.Get("Grpc-Timeout"); g == "" || g == "900m" {
		t.Errorf("upstream saw grpc-timeout %q, want the time left (under 800ms)", g)
	}
}
