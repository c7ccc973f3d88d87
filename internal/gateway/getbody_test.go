package gateway_test

import (
	"fmt"
	"testing"
)

// TestGetWithBody: a GET with a body is refused by default (a back end that ignores it would read
// it as the next request) and forwarded, body and all, on a listener that opts in.
func TestGetWithBody(t *testing.T) {
	t.Parallel()
	e := startUpstream(t, "echo", upstreamOptions{})
	gw := startGateway(t, configHead+fmt.Sprintf(`listeners:
  - {name: strict, address: "127.0.0.1:0"}
  - {name: lenient, address: "127.0.0.1:0", limits: {allowGetBody: true}}
routes:
  - name: all
    backends: [{service: echo}]
services:
  - name: echo
    endpoints: [{address: %q}]
`, e.Addr))
	req := "GET /search HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nContent-Length: 13\r\nConnection: close\r\n\r\n{\"q\":\"boots\"}"
	if r := rawExchange(t, listenerAddr(t, gw, "strict"), req); r.Status != 400 || r.reason() != "body_not_allowed" {
		t.Errorf("default listener: %d %q, want 400 body_not_allowed", r.Status, r.reason())
	}
	r := rawExchange(t, listenerAddr(t, gw, "lenient"), req)
	if r.Status != 200 || r.Echo == nil {
		t.Fatalf("opted-in listener: %d %q", r.Status, r.reason())
	}
	if r.Echo.Method != "GET" || r.Echo.BodyLen != 13 {
		t.Errorf("upstream saw %s with a %d-byte body, want GET with 13", r.Echo.Method, r.Echo.BodyLen)
	}
}
