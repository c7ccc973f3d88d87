package gateway_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// stallHandler serves the stream idle timeout tests:
//   - /stall-head waits stall before answering at all;
//   - /stall-body sends the head and 5 bytes, then waits stall before the rest;
//   - /trickle sends one byte every tick, 10 in all, so the stream is never idle for long;
//   - /die sends 3 flushed chunks, then breaks the stream (HTTP/1: the connection is closed
//     mid-body; HTTP/2: the stream is reset).
//
// Every wait ends early when the gateway gives up on the request.
func stallHandler(stall, tick time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wait := func(d time.Duration) bool {
			select {
			case <-time.After(d):
				return true
			case <-r.Context().Done():
				return false
			}
		}
		flush := func() { _ = http.NewResponseController(w).Flush() }
		switch r.URL.Path {
		case "/stall-head":
			if !wait(stall) {
				return
			}
			_, _ = io.WriteString(w, "late")
		case "/stall-body":
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "early")
			flush()
			if !wait(stall) {
				return
			}
			_, _ = io.WriteString(w, "late")
		case "/trickle":
			for i := 0; i < 10; i++ {
				if !wait(tick) {
					return
				}
				_, _ = io.WriteString(w, "x")
				flush()
			}
		case "/die":
			w.Header().Set("Content-Type", "text/event-stream")
			for i := 0; i < 3; i++ {
				fmt.Fprintf(w, "data: %d\n\n", i)
				flush()
			}
			panic(http.ErrAbortHandler) // HTTP/1: the connection is closed; HTTP/2: RST_STREAM
		default:
			http.NotFound(w, r)
		}
	})
}

// streamConfig routes /h1/... to an HTTP/1 service and /h2/... to an HTTP/2 one (prefix
// stripped), both with the given stream idle timeout and a long route timeout.
func streamConfig(h1, h2 string, idle time.Duration) string {
	return configHead + fmt.Sprintf(`listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: h1
    match: [{path: {prefix: /h1}}]
    filters: [{rewrite: {pathPrefix: /}}]
    backends: [{service: h1svc}]
    timeout: 20s
    streamIdleTimeout: %v
  - name: h2
    match: [{path: {prefix: /h2}}]
    filters: [{rewrite: {pathPrefix: /}}]
    backends: [{service: h2svc}]
    timeout: 20s
    streamIdleTimeout: %v
services:
  - name: h1svc
    endpoints: [{address: %q}]
  - name: h2svc
    protocol: http2
    endpoints: [{address: %q}]
`, idle, idle, h1, h2)
}

// TestStreamIdleTimeout: an upstream that goes silent, before its head or in the middle of its
// body, is cut off after the route's stream idle timeout although the route timeout is far
// away; a stream that keeps moving is never cut, however long it lasts in all. Both for HTTP/1
// and HTTP/2 services.
func TestStreamIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	h := stallHandler(20*time.Second, idle/3)
	h1 := startUpstream(t, "h1", upstreamOptions{Handler: h})
	h2 := startUpstream(t, "h2", upstreamOptions{Handler: h, H2C: true})
	gw := startGateway(t, streamConfig(h1.Addr, h2.Addr, idle))
	base := baseURL(t, gw, "public")
	c := newClient(t)
	for _, proto := range []string{"h1", "h2"} {
		t.Run(proto+"/silent before the head", func(t *testing.T) {
			r := get(t, c, base+"/"+proto+"/stall-head")
			if r.Status != 504 || r.reason() != "stream_idle_timeout" {
				t.Fatalf("status %d (%q), want 504 stream_idle_timeout", r.Status, r.reason())
			}
		})
		t.Run(proto+"/silent mid-body", func(t *testing.T) {
			resp, err := c.Get(base + "/" + proto + "/stall-body")
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "early" || err == nil {
				t.Fatalf("status %d, body %q, read error %v; want 200, \"early\" and a broken body", resp.StatusCode, body, err)
			}
		})
		t.Run(proto+"/moving stream outlives the idle timeout", func(t *testing.T) {
			start := time.Now()
			r := get(t, c, base+"/"+proto+"/trickle")
			if r.Status != 200 || string(r.Body) != "xxxxxxxxxx" {
				t.Fatalf("status %d (%q), body %q; want 200 and 10 bytes", r.Status, r.reason(), r.Body)
			}
			if took := time.Since(start); took < 2*idle {
				t.Fatalf("the trickle took %v, less than twice the idle timeout: the test proves nothing", took)
			}
		})
	}
}

// TestUpstreamDiesDuringStreamingBody: an upstream that dies in the middle of a streamed (SSE)
// response must not look like a complete response to the client: the chunks that came are
// delivered, then the client's read fails (no terminating chunk, or a reset stream). The gateway
// goes on serving.
func TestUpstreamDiesDuringStreamingBody(t *testing.T) {
	t.Parallel()
	h := stallHandler(time.Second, time.Millisecond)
	h1 := startUpstream(t, "h1", upstreamOptions{Handler: h})
	h2 := startUpstream(t, "h2", upstreamOptions{Handler: h, H2C: true})
	gw := startGateway(t, streamConfig(h1.Addr, h2.Addr, time.Minute))
	base := baseURL(t, gw, "public")
	var dials atomic.Int64
	clients := map[string]*http.Client{"HTTP/1.1 client": newClient(t), "HTTP/2 client": h2Client(t, &dials)}
	for cname, c := range clients {
		for _, proto := range []string{"h1", "h2"} {
			t.Run(cname+"/"+proto+" service", func(t *testing.T) {
				resp, err := c.Get(base + "/" + proto + "/die")
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("status %d, want 200 (the head came before the upstream died)", resp.StatusCode)
				}
				if err == nil {
					t.Fatalf("the body %q ended cleanly; a dead upstream must show as a broken body", body)
				}
				if !bytes.HasPrefix(body, []byte("data: 0\n\n")) {
					t.Fatalf("body %q: the chunks sent before the failure were not delivered", body)
				}
				if errors.Is(err, io.EOF) {
					t.Fatalf("read error %v is a clean end of body", err)
				}
				r := get(t, c, base+"/"+proto+"/trickle")
				if r.Status != 200 {
					t.Fatalf("the next request: status %d (%q)", r.Status, r.reason())
				}
			})
		}
	}
}

// TestRouteMaxBodyBytes: a route's body limit refuses larger bodies with 413, whether their
// length is declared or chunked, and admits smaller ones.
func TestRouteMaxBodyBytes(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, "up", upstreamOptions{})
	gw := startGateway(t, configHead+fmt.Sprintf(`listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: small
    match: [{path: {prefix: /small}}]
    maxBodyBytes: 1000
    backends: [{service: app}]
  - name: rest
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: %q}]
`, up.Addr))
	base := baseURL(t, gw, "public")
	c := newClient(t)
	post := func(path string, n int, chunked bool) *result {
		t.Helper()
		var body io.Reader = strings.NewReader(strings.Repeat("b", n))
		if chunked {
			body = io.MultiReader(body) // hides the length: sent chunked
		}
		req, err := http.NewRequest("POST", base+path, body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r, err := readResult(resp)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, chunked := range []bool{false, true} {
		if r := post("/small", 2000, chunked); r.Status != 413 || r.reason() != "body_too_large" {
			t.Errorf("chunked=%v: 2000 bytes to the 1000-byte route: status %d (%q), want 413 body_too_large", chunked, r.Status, r.reason())
		}
		if r := post("/small", 1000, chunked); r.Status != 200 || r.Echo == nil || r.Echo.BodyLen != 1000 {
			t.Errorf("chunked=%v: 1000 bytes to the 1000-byte route: status %d (%q)", chunked, r.Status, r.reason())
		}
		if r := post("/other", 2000, chunked); r.Status != 200 {
			t.Errorf("chunked=%v: 2000 bytes to a route without a limit: status %d (%q)", chunked, r.Status, r.reason())
		}
	}
}

// TestCircuitBreakerHTTP2Connections: an HTTP/2 service whose endpoint allows one stream per
// connection needs a second connection for a second concurrent request; with maxConnections 1
// the breaker refuses it at once with circuit_open instead of opening it.
func TestCircuitBreakerHTTP2Connections(t *testing.T) {
	t.Parallel()
	const delay = 500 * time.Millisecond
	up := startUpstream(t, "up", upstreamOptions{H2C: true, MaxConcurrentStreams: 1})
	gw := startGateway(t, configHead+fmt.Sprintf(`listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: api
    backends: [{service: app}]
services:
  - name: app
    protocol: http2
    endpoints: [{address: %q}]
    circuitBreaker: {maxConnections: 1}
`, up.Addr))
	url := baseURL(t, gw, "public") + "/x"
	first := getAsync(newClient(t), fmt.Sprintf("%s?delay=%s", url, delay))
	waitFor(t, 5*time.Second, "the first request did not reach the upstream", func() bool { return up.Hits.Load() == 1 })
	second := <-getAsync(newClient(t), url)
	if second.Status != 503 || second.reason() != "circuit_open" {
		t.Fatalf("the request needing a second connection: status %d (%q) %s, want 503 circuit_open", second.Status, second.reason(), second.Body)
	}
	if r := <-first; r.Status != 200 {
		t.Fatalf("the first request: status %d (%q)", r.Status, r.reason())
	}
	if n := up.NewConns.Load(); n != 1 {
		t.Fatalf("the upstream accepted %d connections, want 1", n)
	}
	if v, _ := metricValue(t, gw, "meshgate_circuit_breaker_rejected_total", map[string]string{"service": "app", "threshold": "max_connections"}); v != 1 {
		t.Errorf("rejections by max_connections = %v, want 1", v)
	}
}
