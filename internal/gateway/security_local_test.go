package gateway_test

import (
	"fmt"
	"testing"
)

// TestSecurityHeadersOnGeneratedResponses: the security headers of a route also go on the
// responses meshgate generates on it (a refusal by an earlier policy, an unreachable upstream),
// not only on the upstream's.
func TestSecurityHeadersOnGeneratedResponses(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, "up", upstreamOptions{})
	gw := startGateway(t, configHead+fmt.Sprintf(`listeners:
  - {name: public, address: "127.0.0.1:0"}
authenticators:
  - {name: key, apiKey: {header: X-API-Key}}
routes:
  - name: guarded
    match: [{path: {prefix: /guarded}}]
    auth: {authenticators: [key]}
    filters:
      - securityHeaders: {contentSecurityPolicy: "default-src 'none'"}
    backends: [{service: app}]
  - name: down
    match: [{path: {prefix: /down}}]
    filters:
      - securityHeaders: {}
    backends: [{service: gone}]
services:
  - name: app
    endpoints: [{address: %q}]
  - name: gone
    endpoints: [{address: %q}]
`, up.Addr, freeAddr(t)))
	base := baseURL(t, gw, "public")
	c := newClient(t)

	r := get(t, c, base+"/guarded")
	if r.Status != 401 || r.reason() != "unauthenticated" {
		t.Fatalf("GET /guarded without a key: %d %q", r.Status, r.reason())
	}
	checkSingle(t, "401", r.Header, "X-Content-Type-Options", "nosniff")
	checkSingle(t, "401", r.Header, "X-Frame-Options", "DENY")
	checkSingle(t, "401", r.Header, "Content-Security-Policy", "default-src 'none'")

	r = get(t, c, base+"/down")
	if r.Status != 503 {
		t.Fatalf("GET /down: %d %q", r.Status, r.reason())
	}
	checkSingle(t, "503", r.Header, "X-Content-Type-Options", "nosniff")
	checkSingle(t, "503", r.Header, "Referrer-Policy", "no-referrer")
}
