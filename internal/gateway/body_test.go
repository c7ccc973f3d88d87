package gateway_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// smallBodyLimit is maxBodyBytes of the "small" listener in TestBodies.
const smallBodyLimit = 16 << 10

// unknownLength hides the length of a reader from net/http, which then sends it chunked.
type unknownLength struct{ io.Reader }

// TestBodies streams large request and response bodies through the gateway and checks the
// request body limit and Expect: 100-continue.
func TestBodies(t *testing.T) {
	t.Parallel()
	e := startUpstream(t, "echo", upstreamOptions{})
	gw := startGateway(t, configHead+fmt.Sprintf(`listeners:
  - {name: edge, address: "127.0.0.1:0"}
  - name: small
    address: "127.0.0.1:0"
    limits: {maxBodyBytes: %d}
routes:
  - name: all
    backends: [{service: echo}]
services:
  - name: echo
    endpoints: [{address: %q}]
`, smallBodyLimit, e.Addr))
	edge := baseURL(t, gw, "edge")
	small := baseURL(t, gw, "small")
	big := bigBody()
	bigSHA := sha256Hex(big)

	post := func(t *testing.T, c *http.Client, url string, body io.Reader, length int64, hdr ...string) *result {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, url, body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = length
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		return do(t, c, req)
	}
	checkEcho := func(t *testing.T, r *result, n int64, sha string, chunked bool) {
		t.Helper()
		if r.Status != 200 || r.Echo == nil {
			t.Fatalf("status %d reason %q body %.200q", r.Status, r.reason(), r.Body)
		}
		if r.Echo.BodyLen != n || r.Echo.BodySHA256 != sha {
			t.Errorf("upstream received %d bytes (sha256 %s); want %d (sha256 %s)", r.Echo.BodyLen, r.Echo.BodySHA256, n, sha)
		}
		if r.Echo.Chunked != chunked {
			t.Errorf("upstream saw chunked=%v; want %v", r.Echo.Chunked, chunked)
		}
	}

	t.Run("5 MiB request with Content-Length", func(t *testing.T) {
		t.Parallel()
		r := post(t, newClient(t), edge+"/upload", bytes.NewReader(big), int64(len(big)))
		checkEcho(t, r, int64(len(big)), bigSHA, false)
		if r.Echo != nil && r.Echo.ContentLength != int64(len(big)) {
			t.Errorf("upstream saw Content-Length %d; want %d", r.Echo.ContentLength, len(big))
		}
	})
	t.Run("5 MiB chunked request", func(t *testing.T) {
		t.Parallel()
		r := post(t, newClient(t), edge+"/upload", unknownLength{bytes.NewReader(big)}, -1)
		checkEcho(t, r, int64(len(big)), bigSHA, true)
	})
	t.Run("5 MiB response", func(t *testing.T) {
		t.Parallel()
		r := get(t, newClient(t), edge+"/big")
		if r.Status != 200 || len(r.Body) != len(big) || sha256Hex(r.Body) != bigSHA {
			t.Errorf("status %d, %d bytes (sha256 %s); want 200, %d bytes (sha256 %s)", r.Status, len(r.Body), sha256Hex(r.Body), len(big), bigSHA)
		}
	})
	t.Run("body limit with Content-Length", func(t *testing.T) {
		t.Parallel()
		body := bytes.Repeat([]byte("x"), 3*smallBodyLimit)
		r := post(t, newClient(t), small+"/upload", bytes.NewReader(body), int64(len(body)))
		if r.Status != 413 || r.reason() != "body_too_large" {
			t.Errorf("status %d reason %q; want 413 body_too_large", r.Status, r.reason())
		}
	})
	t.Run("body limit with chunked body", func(t *testing.T) {
		t.Parallel()
		body := bytes.Repeat([]byte("x"), 3*smallBodyLimit)
		r := post(t, newClient(t), small+"/upload", unknownLength{bytes.NewReader(body)}, -1)
		if r.Status != 413 || r.reason() != "body_too_large" {
			t.Errorf("status %d reason %q; want 413 body_too_large", r.Status, r.reason())
		}
	})
	t.Run("body at the limit passes", func(t *testing.T) {
		t.Parallel()
		body := bytes.Repeat([]byte("y"), smallBodyLimit)
		r := post(t, newClient(t), small+"/upload", unknownLength{bytes.NewReader(body)}, -1)
		checkEcho(t, r, smallBodyLimit, sha256Hex(body), true)
	})

	t.Run("body limit over HTTP/2", func(t *testing.T) {
		t.Parallel()
		var dials atomic.Int64
		client := h2Client(t, &dials)
		body := bytes.Repeat([]byte("x"), 3*smallBodyLimit)
		for _, length := range []int64{int64(len(body)), -1} {
			var rd io.Reader = bytes.NewReader(body)
			if length < 0 {
				rd = unknownLength{rd}
			}
			r := post(t, client, small+"/upload", rd, length)
			if r.Status != 413 || r.reason() != "body_too_large" {
				t.Errorf("length %d: status %d reason %q; want 413 body_too_large", length, r.Status, r.reason())
			}
		}
		ok := bytes.Repeat([]byte("y"), smallBodyLimit)
		r := post(t, client, small+"/upload", unknownLength{bytes.NewReader(ok)}, -1)
		checkEcho(t, r, smallBodyLimit, sha256Hex(ok), true)
	})

	// expectClient waits up to 5s for "100 Continue" before it sends a body anyway.
	expectClient := func(t *testing.T) *http.Client {
		tr := &http.Transport{Proxy: nil, DialContext: (&net.Dialer{}).DialContext, ExpectContinueTimeout: 5 * time.Second}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 15 * time.Second}
	}
	t.Run("Expect: 100-continue", func(t *testing.T) {
		t.Parallel()
		body := bytes.Repeat([]byte("z"), 64<<10)
		start := time.Now()
		r := post(t, expectClient(t), edge+"/upload", bytes.NewReader(body), int64(len(body)), "Expect", "100-continue")
		checkEcho(t, r, int64(len(body)), sha256Hex(body), false)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v: the client waited for a 100 Continue that did not come", d)
		}
	})
	t.Run("Expect: 100-continue refused by the body limit", func(t *testing.T) {
		t.Parallel()
		body := bytes.Repeat([]byte("z"), 3*smallBodyLimit)
		start := time.Now()
		r := post(t, expectClient(t), small+"/upload", bytes.NewReader(body), int64(len(body)), "Expect", "100-continue")
		if r.Status != 413 || r.reason() != "body_too_large" {
			t.Errorf("status %d reason %q; want 413 body_too_large", r.Status, r.reason())
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v; want an answer without waiting for the body", d)
		}
	})
}
