package gateway_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestRouteIgnoresSegmentParams: a restricted route for /admin beside an open catch-all: a
// request for "/admin;x" (which an upstream that strips ";parameters" serves as /admin) is
// routed to the /admin route, not to the catch-all; the path forwarded keeps its parameters.
func TestRouteIgnoresSegmentParams(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, "up", upstreamOptions{})
	gw := startGateway(t, configHead+fmt.Sprintf(`listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: admin
    match: [{path: {prefix: /admin}}]
    filters: [{respond: {status: 403, body: "restricted"}}]
  - name: open
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: %q}]
`, up.Addr))
	addr := listenerAddr(t, gw, "public")
	for _, tc := range []struct {
		target, route string
	}{
		{"/admin;x", "admin"},
		{"/admin;jsessionid=1/users", "admin"},
		{"/;x/admin", "admin"},
		{"/admin", "admin"},
		{"/public;x/admin", "open"},
		{"/adminx;y", "open"},
	} {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", tc.target)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			c.Close()
			t.Fatalf("%s: %v", tc.target, err)
		}
		r, err := readResult(resp)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		switch tc.route {
		case "admin":
			if r.Status != 403 || string(r.Body) != "restricted" {
				t.Errorf("%s: status %d %q; want the /admin route's 403", tc.target, r.Status, r.Body)
			}
		case "open":
			if r.Status != 200 || r.Echo == nil || r.Echo.URI != tc.target {
				t.Errorf("%s: status %d; want the open route forwarding the path as it is", tc.target, r.Status)
			}
		}
	}
}
