package gateway_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// forwardConfig is the config of the forwarding-semantics tests: one route per behaviour, on an
// untrusting listener ("edge") and on one that trusts loopback proxies ("trusted").
func forwardConfig(echoAddr, splitA, splitB, refused string) string {
	return configHead + fmt.Sprintf(`listeners:
  - {name: edge, address: "127.0.0.1:0"}
  - name: trusted
    address: "127.0.0.1:0"
    trustedProxies: [127.0.0.1/32]
routes:
  - name: prefix
    match: [{path: {prefix: /old}}]
    filters: [{rewrite: {pathPrefix: /new}}]
    backends: [{service: echo}]
  - name: full
    match: [{path: {prefix: /full}}]
    filters: [{rewrite: {path: /replaced}}]
    backends: [{service: echo}]
  - name: host
    match: [{path: {exact: /host}}]
    filters: [{rewrite: {host: rewritten.example}}]
    backends: [{service: echo}]
  - name: request-headers
    match: [{path: {exact: /reqh}}]
    filters:
      - requestHeaders: {set: {X-Set: set-value}, add: {X-Add: added}, remove: [X-Remove]}
    backends: [{service: echo}]
  - name: response-headers
    match: [{path: {exact: /resph}}]
    filters:
      - responseHeaders: {set: {X-Resp-Set: resp-value}, remove: [X-Upstream-Remove]}
    backends: [{service: echo}]
  - name: redirect
    match: [{path: {prefix: /redirect}}]
    filters: [{redirect: {scheme: https, host: example.com, status: 301}}]
  - name: fixed
    match: [{path: {exact: /fixed}}]
    filters: [{respond: {status: 418, body: "short and stout", contentType: "text/x-tea"}}]
  - name: echo
    match: [{path: {prefix: /echo}}, {path: {prefix: /a}}, {path: {prefix: /broken}}, {path: {prefix: /bighead}}]
    backends: [{service: echo}]
  - name: split
    match: [{path: {prefix: /split}}]
    backends: [{service: split-a, weight: 90}, {service: split-b, weight: 10}]
  - name: refused
    match: [{path: {prefix: /refused}}]
    backends: [{service: refused}]
  - name: slow
    match: [{path: {prefix: /slow}}]
    timeout: 200ms
    backends: [{service: echo}]
services:
  - name: echo
    endpoints: [{address: %q}]
  - name: split-a
    endpoints: [{address: %q}]
  - name: split-b
    endpoints: [{address: %q}]
  - name: refused
    endpoints: [{address: %q}]
    pool: {connectTimeout: 1s}
`, echoAddr, splitA, splitB, refused)
}

// TestForwarding checks what the upstream receives and what the client gets back, one behaviour
// per case.
func TestForwarding(t *testing.T) {
	t.Parallel()
	e := startUpstream(t, "echo", upstreamOptions{})
	sa := startUpstream(t, "split-a", upstreamOptions{})
	sb := startUpstream(t, "split-b", upstreamOptions{})
	gw := startGateway(t, forwardConfig(e.Addr, sa.Addr, sb.Addr, freeAddr(t)))
	edge := listenerAddr(t, gw, "edge")
	trusted := listenerAddr(t, gw, "trusted")
	const host = "front.example"

	header := func(t *testing.T, r *result, name, want string) {
		t.Helper()
		if r.Echo == nil {
			t.Fatalf("no echo from the upstream: status %d reason %q body %q", r.Status, r.reason(), r.Body)
		}
		got := strings.Join(r.Echo.Header.Values(name), ", ")
		if got != want {
			t.Errorf("upstream saw %s: %q; want %q", name, got, want)
		}
	}
	uri := func(t *testing.T, r *result, want string) {
		t.Helper()
		if r.Echo == nil {
			t.Fatalf("no echo from the upstream: status %d reason %q body %q", r.Status, r.reason(), r.Body)
		}
		if r.Echo.URI != want {
			t.Errorf("upstream saw request-target %q; want %q", r.Echo.URI, want)
		}
	}

	tests := []struct {
		desc     string
		listener string // address; edge when empty
		req      string
		status   int
		reason   string // X-Meshgate-Reason; "" means the header must be absent
		check    func(t *testing.T, r *result)
	}{
		{
			desc: "path prefix rewrite", req: rawGet("/old/x/y?q=1", host), status: 200,
			check: func(t *testing.T, r *result) { uri(t, r, "/new/x/y?q=1") },
		},
		{
			desc: "full path rewrite keeps the query", req: rawGet("/full/abc?q=2", host), status: 200,
			check: func(t *testing.T, r *result) { uri(t, r, "/replaced?q=2") },
		},
		{
			desc: "host rewrite", req: rawGet("/host", host), status: 200,
			check: func(t *testing.T, r *result) {
				if r.Echo == nil || r.Echo.Host != "rewritten.example" {
					t.Errorf("upstream saw Host %q; want rewritten.example", r.Echo.Host)
				}
				header(t, r, "X-Forwarded-Host", host)
			},
		},
		{
			desc:   "request header set, add and remove",
			req:    rawGet("/reqh", host, "X-Set: client", "X-Add: client", "X-Remove: secret", "X-Other: kept"),
			status: 200,
			check: func(t *testing.T, r *result) {
				header(t, r, "X-Set", "set-value")
				header(t, r, "X-Add", "client, added")
				header(t, r, "X-Remove", "")
				header(t, r, "X-Other", "kept")
			},
		},
		{
			desc: "response header set and remove", req: rawGet("/resph", host), status: 200,
			check: func(t *testing.T, r *result) {
				if got := r.Header.Get("X-Resp-Set"); got != "resp-value" {
					t.Errorf("X-Resp-Set = %q; want resp-value", got)
				}
				if got := r.Header.Get("X-Upstream-Remove"); got != "" {
					t.Errorf("X-Upstream-Remove = %q; want it removed", got)
				}
				if got := r.Header.Get("X-Upstream-Keep"); got != "keep-me" {
					t.Errorf("X-Upstream-Keep = %q; want keep-me", got)
				}
			},
		},
		{
			desc: "redirect", req: rawGet("/redirect/x?q=1", host+":8080"), status: 301, reason: "redirect",
			check: func(t *testing.T, r *result) {
				if got := r.Header.Get("Location"); got != "https://example.com/redirect/x?q=1" {
					t.Errorf("Location = %q; want https://example.com/redirect/x?q=1", got)
				}
			},
		},
		{
			desc: "fixed response", req: rawGet("/fixed", host), status: 418, reason: "direct_response",
			check: func(t *testing.T, r *result) {
				if string(r.Body) != "short and stout" {
					t.Errorf("body %q; want %q", r.Body, "short and stout")
				}
				if got := r.Header.Get("Content-Type"); got != "text/x-tea" {
					t.Errorf("Content-Type %q; want text/x-tea", got)
				}
			},
		},
		{
			desc: "hop-by-hop fields and fields named by Connection are stripped",
			req: rawGet("/echo", host, "Connection: X-Foo, X-Forwarded-For", "X-Foo: secret", "Keep-Alive: timeout=5",
				"TE: gzip", "Proxy-Connection: keep-alive", "Upgrade: websocket", "X-Forwarded-For: 203.0.113.9"),
			status: 200,
			check: func(t *testing.T, r *result) {
				for _, name := range []string{"X-Foo", "Keep-Alive", "Te", "Proxy-Connection", "Upgrade", "Connection"} {
					header(t, r, name, "")
				}
				// Connection named X-Forwarded-For: the client's value goes, meshgate's stays.
				header(t, r, "X-Forwarded-For", "127.0.0.1")
			},
		},
		{
			desc: "forwarded fields from an untrusted peer are replaced",
			req: rawGet("/echo", host, "X-Forwarded-For: 203.0.113.9", "X-Forwarded-Proto: https",
				"X-Forwarded-Host: evil.example", "Forwarded: for=203.0.113.9"),
			status: 200,
			check: func(t *testing.T, r *result) {
				header(t, r, "X-Forwarded-For", "127.0.0.1")
				header(t, r, "X-Forwarded-Proto", "http")
				header(t, r, "X-Forwarded-Host", host)
				header(t, r, "Forwarded", "")
			},
		},
		{
			desc: "forwarded fields from a trusted peer are extended", listener: trusted,
			req: rawGet("/echo", host, "X-Forwarded-For: 203.0.113.9", "X-Forwarded-Proto: https",
				"X-Forwarded-Host: public.example"),
			status: 200,
			check: func(t *testing.T, r *result) {
				header(t, r, "X-Forwarded-For", "203.0.113.9, 127.0.0.1")
				header(t, r, "X-Forwarded-Proto", "https")
				header(t, r, "X-Forwarded-Host", "public.example")
			},
		},
		{
			desc: "forwarded fields set by a trusted peer that sent none", listener: trusted,
			req: rawGet("/echo", host), status: 200,
			check: func(t *testing.T, r *result) {
				header(t, r, "X-Forwarded-For", "127.0.0.1")
				header(t, r, "X-Forwarded-Proto", "http")
				header(t, r, "X-Forwarded-Host", host)
			},
		},
		{
			desc: "valid request id is kept", req: rawGet("/echo", host, "X-Request-Id: abc-123"), status: 200,
			check: func(t *testing.T, r *result) { header(t, r, "X-Request-Id", "abc-123") },
		},
		{
			desc: "missing request id is generated", req: rawGet("/echo", host), status: 200,
			check: func(t *testing.T, r *result) {
				if r.Echo == nil || !isHex32(r.Echo.Header.Get("X-Request-Id")) {
					t.Errorf("upstream saw X-Request-Id %q; want 32 hex digits", r.Echo.Header.Get("X-Request-Id"))
				}
			},
		},
		{
			desc: "over-long request id is replaced", req: rawGet("/echo", host, "X-Request-Id: "+strings.Repeat("x", 200)),
			status: 200,
			check: func(t *testing.T, r *result) {
				if r.Echo == nil || !isHex32(r.Echo.Header.Get("X-Request-Id")) {
					t.Errorf("upstream saw X-Request-Id %q; want 32 hex digits", r.Echo.Header.Get("X-Request-Id"))
				}
			},
		},
		{
			desc: "no route: 404 no_route with a generated request id", req: rawGet("/nothing", host),
			status: 404, reason: "no_route",
			check: func(t *testing.T, r *result) {
				if id := r.Header.Get("X-Request-Id"); !isHex32(id) {
					t.Errorf("X-Request-Id %q on a proxy-generated response; want 32 hex digits", id)
				}
			},
		},
		{
			desc: "proxy-generated response returns the client's request id", req: rawGet("/nothing", host, "X-Request-Id: trace-7"),
			status: 404, reason: "no_route",
			check: func(t *testing.T, r *result) {
				if id := r.Header.Get("X-Request-Id"); id != "trace-7" {
					t.Errorf("X-Request-Id %q; want trace-7", id)
				}
			},
		},
		{
			desc: "path normalisation", req: rawGet("//a/./b/../c", host), status: 200,
			check: func(t *testing.T, r *result) { uri(t, r, "/a/c") },
		},
		{
			desc: "percent-encoded unreserved characters are decoded", req: rawGet("/a/%7Euser/%2e%2e/b", host), status: 200,
			check: func(t *testing.T, r *result) { uri(t, r, "/a/b") },
		},
		{
			desc: "encoded slash is refused", req: rawGet("/echo/a%2Fb", host), status: 400, reason: "bad_path",
		},
		{
			desc: "8 kB request head within the limit", req: rawGet("/echo", host, "Cookie: "+strings.Repeat("c", 8000)),
			status: 200,
			check:  func(t *testing.T, r *result) { header(t, r, "Cookie", strings.Repeat("c", 8000)) },
		},
		{
			desc: "request head too large", req: rawGet("/echo", host, "X-Big: "+strings.Repeat("a", 70000)),
			status: 431, reason: "header_too_large",
		},
		{
			desc: "too many header fields", req: rawGet("/echo", host, manyFields(120)...),
			status: 431, reason: "too_many_headers",
		},
		{
			desc: "upstream response head too large", req: rawGet("/bighead", host),
			status: 502, reason: "upstream_protocol",
		},
		{
			desc: "upstream refuses connections", req: rawGet("/refused", host), status: 503, reason: "upstream_unavailable",
		},
		{
			desc: "route timeout", req: rawGet("/slow?delay=2s", host), status: 504, reason: "upstream_timeout",
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			addr := tc.listener
			if addr == "" {
				addr = edge
			}
			start := time.Now()
			r := rawExchange(t, addr, tc.req)
			if r.Status != tc.status {
				t.Errorf("status %d (reason %q, body %q); want %d", r.Status, r.reason(), r.Body, tc.status)
			}
			if got := r.reason(); got != tc.reason {
				t.Errorf("X-Meshgate-Reason %q; want %q", got, tc.reason)
			}
			if tc.reason == "upstream_timeout" {
				if d := time.Since(start); d > 1500*time.Millisecond {
					t.Errorf("timeout response after %v; want about 200ms", d)
				}
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}

	t.Run("weighted split 90/10", func(t *testing.T) {
		t.Parallel()
		client := newClient(t)
		const n = 2000
		counts := map[string]int{}
		for range n {
			r := get(t, client, "http://"+edge+"/split")
			if r.Status != 200 || r.Echo == nil {
				t.Fatalf("status %d reason %q", r.Status, r.reason())
			}
			counts[r.Echo.Server]++
		}
		// Binomial(2000, 0.9): mean 1800, standard deviation 13.4; allow more than 7 of them.
		if a := counts["split-a"]; a < 1700 || a > 1900 || counts["split-a"]+counts["split-b"] != n {
			t.Errorf("split %v; want about 1800 split-a and 200 split-b", counts)
		}
	})

	t.Run("HEAD then GET on one connection", func(t *testing.T) {
		t.Parallel()
		client := newClient(t)
		for i := range 3 {
			resp, err := client.Head("http://" + edge + "/echo/head")
			if err != nil {
				t.Fatalf("HEAD %d: %v", i+1, err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != 200 || len(body) != 0 {
				t.Errorf("HEAD %d: status %d with %d body bytes; want 200 with none", i+1, resp.StatusCode, len(body))
			}
			if r := get(t, client, "http://"+edge+"/echo/after-head"); r.Status != 200 || r.Echo == nil || r.Echo.URI != "/echo/after-head" {
				t.Errorf("GET after HEAD %d: status %d reason %q", i+1, r.Status, r.reason())
			}
		}
	})

	t.Run("upstream closes mid-body", func(t *testing.T) {
		t.Parallel()
		client := newClient(t)
		resp, err := client.Get("http://" + edge + "/broken")
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if rerr == nil && len(body) == 1000 {
				t.Errorf("client got a complete 1000-byte body from an upstream that sent 100")
			}
			if len(body) > 100 {
				t.Errorf("client got %d bytes; the upstream sent 100", len(body))
			}
		}
		for i := range 3 {
			if r := get(t, client, "http://"+edge+"/echo"); r.Status != 200 || r.Echo == nil {
				t.Errorf("request %d after the broken one: status %d reason %q", i, r.Status, r.reason())
			}
		}
	})
}

// rawUpstream is a TCP server that answers every request with "200 ok" and records the raw head
// of each request it reads, so tests can see exactly which framing fields were forwarded.
type rawUpstream struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	heads []string
	conns []net.Conn
}

// startRawUpstream starts a rawUpstream, closed when the test ends.
func startRawUpstream(t testing.TB) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns = append(u.conns, c)
			u.mu.Unlock()
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				u.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		u.mu.Lock()
		for _, c := range u.conns {
			_ = c.Close()
		}
		u.mu.Unlock()
		u.wg.Wait()
	})
	return u
}

func (u *rawUpstream) serve(c net.Conn) {
	defer c.Close()
	var raw bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &raw))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		head, _, _ := strings.Cut(raw.String(), "\r\n\r\n")
		raw.Reset()
		// Bytes of a pipelined next request would be lost here; the gateway does not pipeline.
		u.mu.Lock()
		u.heads = append(u.heads, head)
		u.mu.Unlock()
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"); err != nil {
			return
		}
	}
}

// lastHead returns the raw head of the last request received.
func (u *rawUpstream) lastHead() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.heads) == 0 {
		return ""
	}
	return u.heads[len(u.heads)-1]
}

// countFields counts the header lines of head named name, ignoring case.
func countFields(head, name string) int {
	n := 0
	for _, line := range strings.Split(head, "\r\n")[1:] {
		if k, _, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			n++
		}
	}
	return n
}

// TestForwardedFraming checks that a request body's framing reaches the upstream exactly once: a
// recipient may refuse a request with repeated Content-Length fields (meshgate's own parser does),
// so a proxy must never send one.
func TestForwardedFraming(t *testing.T) {
	t.Parallel()
	up := startRawUpstream(t)
	gw := startGateway(t, configHead+fmt.Sprintf(`listeners:
  - {name: edge, address: "127.0.0.1:0"}
routes:
  - name: all
    backends: [{service: raw}]
services:
  - name: raw
    endpoints: [{address: %q}]
`, up.ln.Addr().String()))
	edge := listenerAddr(t, gw, "edge")
	tests := []struct {
		desc           string
		req            string
		wantCL, wantTE int
	}{
		{
			desc:   "Content-Length body",
			req:    "POST /cl HTTP/1.1\r\nHost: x.example\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
			wantCL: 1,
		},
		{
			desc:   "chunked body",
			req:    "POST /te HTTP/1.1\r\nHost: x.example\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			wantTE: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			r := rawExchange(t, edge, tc.req)
			if r.Status != 200 {
				t.Fatalf("status %d reason %q", r.Status, r.reason())
			}
			head := up.lastHead()
			if n := countFields(head, "Content-Length"); n != tc.wantCL {
				t.Errorf("upstream received %d Content-Length fields; want %d. Head:\n%s", n, tc.wantCL, head)
			}
			if n := countFields(head, "Transfer-Encoding"); n != tc.wantTE {
				t.Errorf("upstream received %d Transfer-Encoding fields; want %d. Head:\n%s", n, tc.wantTE, head)
			}
		})
	}
}

// TestUpstreamClosesIdleConnection sends requests on pooled connections that the upstream has
// closed while they sat idle, as servers with a short keep-alive timeout do all the time. The
// client must not see the stale connection, whatever the method and body.
func TestUpstreamClosesIdleConnection(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, "short-idle", upstreamOptions{IdleTimeout: 50 * time.Millisecond})
	gw := startGateway(t, configHead+fmt.Sprintf(`listeners:
  - {name: edge, address: "127.0.0.1:0"}
routes:
  - name: all
    backends: [{service: short-idle}]
services:
  - name: short-idle
    endpoints: [{address: %q}]
`, up.Addr))
	base := baseURL(t, gw, "edge")
	client := newClient(t)
	tests := []struct {
		desc   string
		method string
		body   string
	}{
		{"GET without a body", http.MethodGet, ""},
		{"POST with a body", http.MethodPost, "payload"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			for i := range 3 {
				var body io.Reader
				if tc.body != "" {
					body = strings.NewReader(tc.body)
				}
				req, err := http.NewRequest(tc.method, base+"/idle", body)
				if err != nil {
					t.Fatal(err)
				}
				r := do(t, client, req)
				if r.Status != 200 || r.Echo == nil || r.Echo.BodyLen != int64(len(tc.body)) {
					t.Errorf("%s %d on a connection the upstream closed while idle: status %d reason %q",
						tc.method, i+1, r.Status, r.reason())
				}
				// Let the upstream close the pooled connection.
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
}

// manyFields returns n distinct header field lines.
func manyFields(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("X-Field-%d: %d", i, i)
	}
	return out
}
