package gateway_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// h2Client returns a cleartext HTTP/2 client with prior knowledge that counts its connections in
// dials. Its connections are closed when the test ends.
func h2Client(t testing.TB, dials *atomic.Int64) *http.Client {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

// TestHTTP2 speaks HTTP/2 to the gateway (prior knowledge on an "http" and an "h2c" listener) and
// from the gateway to an HTTP/2 service.
func TestHTTP2(t *testing.T) {
	t.Parallel()
	h1up := startUpstream(t, "h1", upstreamOptions{})
	h2up := startUpstream(t, "h2", upstreamOptions{H2C: true})
	gw := startGateway(t, configHead+fmt.Sprintf(`listeners:
  - {name: edge, address: "127.0.0.1:0"}
  - {name: grpc, address: "127.0.0.1:0", protocol: h2c}
routes:
  - name: to-h2
    match: [{path: {prefix: /h2up}}]
    backends: [{service: h2svc}]
  - name: slow
    match: [{path: {prefix: /slow}}]
    timeout: 200ms
    backends: [{service: h1svc}]
  - name: all
    backends: [{service: h1svc}]
services:
  - name: h1svc
    endpoints: [{address: %q}]
  - name: h2svc
    protocol: http2
    endpoints: [{address: %q}]
`, h1up.Addr, h2up.Addr))

	for _, name := range []string{"edge", "grpc"} {
		addr := listenerAddr(t, gw, name)
		t.Run("prior knowledge on "+name, func(t *testing.T) {
			t.Parallel()
			var dials atomic.Int64
			client := h2Client(t, &dials)
			resp, err := client.Get("http://" + addr + "/x?y=1")
			if err != nil {
				t.Fatal(err)
			}
			r, err := readResult(resp)
			if err != nil {
				t.Fatal(err)
			}
			if resp.ProtoMajor != 2 || r.Status != 200 || r.Echo == nil {
				t.Fatalf("HTTP/%d status %d reason %q; want HTTP/2 200 from the upstream", resp.ProtoMajor, r.Status, r.reason())
			}
			if r.Echo.URI != "/x?y=1" || r.Echo.Host != addr || r.Echo.Method != "GET" {
				t.Errorf("upstream saw %s %s Host %s; want GET /x?y=1 Host %s", r.Echo.Method, r.Echo.URI, r.Echo.Host, addr)
			}
		})
		t.Run("100 concurrent streams on one connection to "+name, func(t *testing.T) {
			t.Parallel()
			var dials atomic.Int64
			client := h2Client(t, &dials)
			const streams = 100
			var wg sync.WaitGroup
			errs := make(chan string, streams)
			for i := range streams {
				wg.Add(1)
				go func() {
					defer wg.Done()
					body := bytes.Repeat([]byte{byte('a' + i%26)}, 1000+i)
					req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://%s/s/%d?delay=100ms", addr, i), bytes.NewReader(body))
					if err != nil {
						errs <- err.Error()
						return
					}
					resp, err := client.Do(req)
					if err != nil {
						errs <- fmt.Sprintf("stream %d: %v", i, err)
						return
					}
					r, err := readResult(resp)
					switch {
					case err != nil:
						errs <- fmt.Sprintf("stream %d: %v", i, err)
					case r.Status != 200 || r.Echo == nil:
						errs <- fmt.Sprintf("stream %d: status %d reason %q", i, r.Status, r.reason())
					case r.Echo.URI != fmt.Sprintf("/s/%d?delay=100ms", i) || r.Echo.BodySHA256 != sha256Hex(body):
						errs <- fmt.Sprintf("stream %d: upstream saw %s with a %d-byte body", i, r.Echo.URI, r.Echo.BodyLen)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Error(e)
			}
			if n := dials.Load(); n != 1 {
				t.Errorf("client opened %d connections; want 1", n)
			}
		})
	}

	t.Run("route timeout over HTTP/2", func(t *testing.T) {
		t.Parallel()
		var dials atomic.Int64
		start := time.Now()
		r := get(t, h2Client(t, &dials), baseURL(t, gw, "edge")+"/slow?delay=2s")
		if r.Status != 504 || r.reason() != "upstream_timeout" {
			t.Errorf("status %d reason %q; want 504 upstream_timeout", r.Status, r.reason())
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("answered after %v; want about 200ms", d)
		}
	})
	t.Run("HTTP/2 service through an HTTP/1.1 client", func(t *testing.T) {
		t.Parallel()
		client := newClient(t)
		body := bytes.Repeat([]byte("q"), 100<<10)
		req, err := http.NewRequest(http.MethodPost, baseURL(t, gw, "edge")+"/h2up/p?z=1", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r := do(t, client, req)
		if r.Status != 200 || r.Echo == nil {
			t.Fatalf("status %d reason %q body %q", r.Status, r.reason(), r.Body)
		}
		if r.Echo.Server != "h2" || r.Echo.ProtoMajor != 2 {
			t.Errorf("answered by %s over HTTP/%d; want h2 over HTTP/2", r.Echo.Server, r.Echo.ProtoMajor)
		}
		if r.Echo.URI != "/h2up/p?z=1" || r.Echo.BodySHA256 != sha256Hex(body) {
			t.Errorf("upstream saw %s with %d body bytes; want /h2up/p?z=1 with %d", r.Echo.URI, r.Echo.BodyLen, len(body))
		}
	})
	t.Run("HTTP/2 service through an HTTP/2 client", func(t *testing.T) {
		t.Parallel()
		var dials atomic.Int64
		r := get(t, h2Client(t, &dials), baseURL(t, gw, "grpc")+"/h2up/q")
		if r.Status != 200 || r.Echo == nil || r.Echo.Server != "h2" || r.Echo.ProtoMajor != 2 {
			t.Errorf("status %d reason %q echo %+v; want 200 from h2 over HTTP/2", r.Status, r.reason(), r.Echo)
		}
	})
}
