package gateway_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/testpki"
)

// edgeRequest builds a request for method and target with the header fields given as
// name, value pairs. A name may repeat, to send a field twice.
func edgeRequest(t testing.TB, method, target string, fields ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(fields); i += 2 {
		if strings.EqualFold(fields[i], "Host") {
			req.Host = fields[i+1]
			continue
		}
		req.Header.Add(fields[i], fields[i+1])
	}
	return req
}

// corsHeaders are the CORS response headers a policy decides.
var corsHeaders = []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
	"Access-Control-Expose-Headers", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers",
	"Access-Control-Max-Age"}

// varyHas reports whether the Vary fields of h list token.
func varyHas(h http.Header, token string) bool {
	for _, v := range h.Values("Vary") {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// corsConfig routes /api with a credentialed CORS policy (exact and wildcard origins), /loose with
// an upstream that sets CORS headers of its own, /private with CORS in front of an API key and an
// authorization policy, and /dead to an address nobody listens on.
func corsConfig(up, loose, dead string) string {
	return configHead + fmt.Sprintf(`listeners: [{name: public, address: "127.0.0.1:0"}]
consumers:
  - name: web
    apiKeys: [{sha256: %q}]
authenticators:
  - name: key
    apiKey: {}
routes:
  - name: api
    match: [{path: {prefix: /api}}]
    cors:
      allowOrigins: ["https://app.example.com", "https://*.example.org"]
      allowMethods: [GET, POST, PUT]
      allowHeaders: [Content-Type, X-Trace]
      exposeHeaders: [X-Server, X-Request-Id]
      allowCredentials: true
      maxAge: 5m
    backends: [{service: app}]
  - name: loose
    match: [{path: {prefix: /loose}}]
    cors:
      allowOrigins: ["https://app.example.com"]
    backends: [{service: loose}]
  - name: dead
    match: [{path: {prefix: /dead}}]
    cors:
      allowOrigins: ["https://app.example.com"]
    backends: [{service: dead}]
  - name: private
    match: [{path: {prefix: /private}}]
    cors:
      allowOrigins: ["https://app.example.com"]
      allowHeaders: [X-API-Key]
    auth: {authenticators: [key]}
    authz:
      rules: [{name: web-only, action: allow, consumers: [web]}]
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: %q}]
  - name: loose
    endpoints: [{address: %q}]
  - name: dead
    endpoints: [{address: %q}]
`, sha256Hex([]byte("web-key")), up, loose, dead)
}

// TestCORSPreflight: a preflight asking for an allowed origin, method and headers is answered 204
// by the gateway itself (the upstream never sees it) with the Access-Control-* headers and Vary;
// a preflight asking for an origin, method or header the policy does not allow is refused with
// 403 cors_rejected, and neither reaches the upstream either.
func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, "up", upstreamOptions{})
	loose := startUpstream(t, "loose", upstreamOptions{})
	gw := startGateway(t, corsConfig(up.Addr, loose.Addr, freeAddr(t)))
	base := baseURL(t, gw, "public")
	c := newClient(t)

	r := do(t, c, edgeRequest(t, "OPTIONS", base+"/api/items",
		"Origin", "https://app.example.com",
		"Access-Control-Request-Method", "PUT",
		"Access-Control-Request-Headers", "Content-Type, x-trace"))
	if r.Status != 204 {
		t.Fatalf("allowed preflight: status %d (%q), want 204", r.Status, r.reason())
	}
	for name, want := range map[string]string{
		"Access-Control-Allow-Origin":      "https://app.example.com",
		"Access-Control-Allow-Methods":     "GET, POST, PUT",
		"Access-Control-Allow-Headers":     "content-type, x-trace",
		"Access-Control-Max-Age":           "300",
		"Access-Control-Allow-Credentials": "true",
	} {
		if got := r.Header.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("allowed preflight: %s = %q, want %q", name, got, want)
		}
	}
	for _, tok := range []string{"Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"} {
		if !varyHas(r.Header, tok) {
			t.Errorf("allowed preflight: Vary %q does not list %s", r.Header.Values("Vary"), tok)
		}
	}
	if r.Header.Get("X-Server") != "" || len(r.Body) != 0 {
		t.Errorf("allowed preflight: answered by the upstream or with a body (X-Server %q, %d bytes)", r.Header.Get("X-Server"), len(r.Body))
	}

	// A wildcard subdomain entry covers one or more labels under the domain, on its scheme and port.
	for _, origin := range []string{"https://shop.example.org", "https://a.b.example.org", "HTTPS://Shop.Example.Org:443"} {
		r := do(t, c, edgeRequest(t, "OPTIONS", base+"/api/items", "Origin", origin, "Access-Control-Request-Method", "GET"))
		if r.Status != 204 || r.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("preflight from %q: status %d, Allow-Origin %q; want 204 echoing the origin", origin, r.Status, r.Header.Get("Access-Control-Allow-Origin"))
		}
	}

	refused := []struct {
		name   string
		fields []string
	}{
		{"unlisted origin", []string{"Origin", "https://evil.example.net", "Access-Control-Request-Method", "GET"}},
		{"listed origin as a prefix of another host", []string{"Origin", "https://app.example.com.evil.com", "Access-Control-Request-Method", "GET"}},
		{"listed origin with user information", []string{"Origin", "https://app.example.com@evil.com", "Access-Control-Request-Method", "GET"}},
		{"listed origin with a path", []string{"Origin", "https://evil.com/https://app.example.com", "Access-Control-Request-Method", "GET"}},
		{"null origin", []string{"Origin", "null", "Access-Control-Request-Method", "GET"}},
		{"other scheme", []string{"Origin", "http://app.example.com", "Access-Control-Request-Method", "GET"}},
		{"other port", []string{"Origin", "https://app.example.com:8443", "Access-Control-Request-Method", "GET"}},
		{"wildcard domain itself", []string{"Origin", "https://example.org", "Access-Control-Request-Method", "GET"}},
		{"wildcard domain as a suffix of a label", []string{"Origin", "https://evilexample.org", "Access-Control-Request-Method", "GET"}},
		{"wildcard domain followed by more", []string{"Origin", "https://a.example.org.evil.com", "Access-Control-Request-Method", "GET"}},
		{"wildcard with an empty label", []string{"Origin", "https://.example.org", "Access-Control-Request-Method", "GET"}},
		{"wildcard on another scheme", []string{"Origin", "http://shop.example.org", "Access-Control-Request-Method", "GET"}},
		{"two origins", []string{"Origin", "https://app.example.com", "Origin", "https://evil.example.net", "Access-Control-Request-Method", "GET"}},
		{"method", []string{"Origin", "https://app.example.com", "Access-Control-Request-Method", "DELETE"}},
		{"method in other case", []string{"Origin", "https://app.example.com", "Access-Control-Request-Method", "put"}},
		{"header", []string{"Origin", "https://app.example.com", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "content-type, x-evil"}},
		{"authorization header", []string{"Origin", "https://app.example.com", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "authorization"}},
	}
	for _, tc := range refused {
		r := do(t, c, edgeRequest(t, "OPTIONS", base+"/api/items", tc.fields...))
		if r.Status != 403 || r.reason() != "cors_rejected" {
			t.Errorf("preflight with a refused %s: status %d (%q), want 403 cors_rejected", tc.name, r.Status, r.reason())
		}
		for _, h := range corsHeaders {
			if v := r.Header.Get(h); v != "" {
				t.Errorf("preflight with a refused %s: %s %q on the refusal", tc.name, h, v)
			}
		}
	}
	if n := up.Hits.Load(); n != 0 {
		t.Errorf("the upstream saw %d preflights, want 0", n)
	}

	// OPTIONS without Access-Control-Request-Method is no preflight: it is forwarded.
	r = do(t, c, edgeRequest(t, "OPTIONS", base+"/api/items", "Origin", "https://app.example.com"))
	if r.Status != 200 || r.Echo == nil || r.Echo.Method != "OPTIONS" {
		t.Errorf("OPTIONS without Access-Control-Request-Method: status %d, echo %v; want it forwarded", r.Status, r.Echo != nil)
	}
}

// TestCORSActualRequest: a request from an allowed origin is forwarded and its answer carries
// Access-Control-Allow-Origin echoing the origin, the credentials and expose headers, and
// "Vary: Origin", also when the gateway answers for a failed upstream; one from a refused origin
// (or the null and look-alike origins) is forwarded too but its answer carries no CORS header,
// even those the upstream set itself.
func TestCORSActualRequest(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, "up", upstreamOptions{})
	loose := startUpstream(t, "loose", upstreamOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// An upstream that would let any page read its answers.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Set("Access-Control-Expose-Headers", "X-Secret")
		w.Header().Set("Vary", "Accept-Encoding")
		_, _ = io.WriteString(w, "loose")
	})})
	gw := startGateway(t, corsConfig(up.Addr, loose.Addr, freeAddr(t)))
	base := baseURL(t, gw, "public")
	c := newClient(t)

	for _, origin := range []string{"https://app.example.com", "https://shop.example.org"} {
		r := do(t, c, edgeRequest(t, "POST", base+"/api/items", "Origin", origin))
		if r.Status != 200 || r.Echo == nil {
			t.Fatalf("POST from %q: status %d (%q), want 200 from the upstream", origin, r.Status, r.reason())
		}
		if got := r.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != origin {
			t.Errorf("POST from %q: Access-Control-Allow-Origin %q, want the origin once", origin, got)
		}
		if got := r.Header.Get("Access-Control-Allow-Credentials"); got != "true" {
			t.Errorf("POST from %q: Access-Control-Allow-Credentials %q, want true", origin, got)
		}
		if got := r.Header.Get("Access-Control-Expose-Headers"); got != "X-Server, X-Request-Id" {
			t.Errorf("POST from %q: Access-Control-Expose-Headers %q", origin, got)
		}
		if !varyHas(r.Header, "Origin") {
			t.Errorf("POST from %q: Vary %q does not list Origin", origin, r.Header.Values("Vary"))
		}
		if got := r.Echo.Header.Get("Origin"); got != origin {
			t.Errorf("POST from %q: the upstream saw Origin %q", origin, got)
		}
	}

	for _, origin := range []string{"https://evil.example.net", "https://app.example.com.evil.com", "null", "https://example.org", "not an origin"} {
		r := do(t, c, edgeRequest(t, "GET", base+"/api/items", "Origin", origin))
		if r.Status != 200 {
			t.Fatalf("GET from %q: status %d (%q), want 200", origin, r.Status, r.reason())
		}
		for _, h := range corsHeaders {
			if v := r.Header.Get(h); v != "" {
				t.Errorf("GET from refused origin %q: %s %q", origin, h, v)
			}
		}
		if !varyHas(r.Header, "Origin") {
			t.Errorf("GET from %q: Vary %q does not list Origin (caches must not serve it to allowed origins)", origin, r.Header.Values("Vary"))
		}
	}

	// Without Origin there is nothing to add.
	r := get(t, c, base+"/api/items")
	if v := r.Header.Get("Access-Control-Allow-Origin"); r.Status != 200 || v != "" {
		t.Errorf("GET without Origin: status %d, Access-Control-Allow-Origin %q", r.Status, v)
	}

	// The policy alone decides the CORS headers of its route: the upstream's go.
	r = do(t, c, edgeRequest(t, "GET", base+"/loose", "Origin", "https://evil.example.net"))
	if r.Status != 200 || string(r.Body) != "loose" {
		t.Fatalf("GET /loose: status %d, body %q", r.Status, r.Body)
	}
	for _, h := range corsHeaders {
		if v := r.Header.Get(h); v != "" {
			t.Errorf("GET /loose from a refused origin: the upstream's %s %q was kept", h, v)
		}
	}
	if !varyHas(r.Header, "Accept-Encoding") || !varyHas(r.Header, "Origin") {
		t.Errorf("GET /loose: Vary %q, want the upstream's Accept-Encoding and Origin", r.Header.Values("Vary"))
	}
	r = do(t, c, edgeRequest(t, "GET", base+"/loose", "Origin", "https://app.example.com"))
	if got := r.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != "https://app.example.com" {
		t.Errorf("GET /loose from the allowed origin: Access-Control-Allow-Origin %q, want the origin once", got)
	}
	for _, h := range []string{"Access-Control-Allow-Credentials", "Access-Control-Expose-Headers"} {
		if v := r.Header.Get(h); v != "" {
			t.Errorf("GET /loose from the allowed origin: the upstream's %s %q was kept", h, v)
		}
	}

	// The gateway's own answer to an upstream failure is readable by the allowed origin too.
	r = do(t, c, edgeRequest(t, "GET", base+"/dead", "Origin", "https://app.example.com"))
	if r.Status < 500 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || !varyHas(r.Header, "Origin") {
		t.Errorf("GET /dead from the allowed origin: status %d (%q), Access-Control-Allow-Origin %q, Vary %q; want a 5xx with the CORS headers",
			r.Status, r.reason(), r.Header.Get("Access-Control-Allow-Origin"), r.Header.Values("Vary"))
	}
	r = do(t, c, edgeRequest(t, "GET", base+"/dead", "Origin", "https://evil.example.net"))
	if v := r.Header.Get("Access-Control-Allow-Origin"); r.Status < 500 || v != "" {
		t.Errorf("GET /dead from a refused origin: status %d, Access-Control-Allow-Origin %q; want a 5xx without", r.Status, v)
	}
}

// TestCORSPreflightBeforeAuth: CORS runs before authentication and authorization, so a preflight
// (which browsers send without credentials) on a route that requires an API key and an allow rule
// is answered 204; the actual request still needs the key, and the gateway's 401 to an allowed
// origin carries the CORS headers so that the page can read it.
func TestCORSPreflightBeforeAuth(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, "up", upstreamOptions{})
	gw := startGateway(t, corsConfig(up.Addr, up.Addr, freeAddr(t)))
	base := baseURL(t, gw, "public")
	c := newClient(t)

	r := do(t, c, edgeRequest(t, "OPTIONS", base+"/private/data",
		"Origin", "https://app.example.com", "Access-Control-Request-Method", "GET",
		"Access-Control-Request-Headers", "x-api-key"))
	if r.Status != 204 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("preflight without credentials: status %d (%q), Allow-Origin %q; want 204", r.Status, r.reason(), r.Header.Get("Access-Control-Allow-Origin"))
	}
	if got := r.Header.Get("Access-Control-Allow-Headers"); got != "x-api-key" {
		t.Errorf("preflight: Access-Control-Allow-Headers %q, want x-api-key", got)
	}
	r = do(t, c, edgeRequest(t, "OPTIONS", base+"/private/data",
		"Origin", "https://evil.example.net", "Access-Control-Request-Method", "GET"))
	if r.Status != 403 || r.reason() != "cors_rejected" {
		t.Errorf("preflight from a refused origin: status %d (%q), want 403 cors_rejected", r.Status, r.reason())
	}

	// The gateway's own refusals of an allowed origin's requests carry the CORS headers too, or
	// the page could not read them (a browser reports a network error instead of the 401).
	for _, tc := range []struct{ key, reason string }{{"", "unauthenticated"}, {"wrong-key", "bad_credential"}} {
		fields := []string{"Origin", "https://app.example.com"}
		if tc.key != "" {
			fields = append(fields, "X-API-Key", tc.key)
		}
		r = do(t, c, edgeRequest(t, "GET", base+"/private/data", fields...))
		if r.Status != 401 || r.reason() != tc.reason {
			t.Errorf("GET with key %q: status %d (%q), want 401 %s", tc.key, r.Status, r.reason(), tc.reason)
		}
		if got := r.Header.Values("Access-Control-Allow-Origin"); !slices.Equal(got, []string{"https://app.example.com"}) {
			t.Errorf("GET with key %q: the 401 has Access-Control-Allow-Origin %q, want the origin once", tc.key, got)
		}
		if !varyHas(r.Header, "Origin") {
			t.Errorf("GET with key %q: the 401 has Vary %q, want Origin listed", tc.key, r.Header.Values("Vary"))
		}
		r = do(t, c, edgeRequest(t, "GET", base+"/private/data", "Origin", "https://evil.example.net"))
		if v := r.Header.Get("Access-Control-Allow-Origin"); r.Status != 401 || v != "" {
			t.Errorf("GET from a refused origin: status %d, Access-Control-Allow-Origin %q; want 401 without", r.Status, v)
		}
	}
	r = do(t, c, edgeRequest(t, "GET", base+"/private/data", "Origin", "https://app.example.com", "X-API-Key", "web-key"))
	if r.Status != 200 || r.Echo == nil {
		t.Fatalf("GET with the key: status %d (%q), want 200", r.Status, r.reason())
	}
	if got := r.Header.Get("Access-Control-Allow-Origin"); got != "https://app.example.com" {
		t.Errorf("GET with the key: Access-Control-Allow-Origin %q", got)
	}
	if got := r.Echo.Header.Get("X-Meshgate-Consumer"); got != "web" {
		t.Errorf("GET with the key: the upstream saw consumer %q, want web", got)
	}
	if n := up.Hits.Load(); n != 1 {
		t.Errorf("the upstream saw %d requests, want 1 (the authenticated GET)", n)
	}
}

// ipAccessConfig is a listener (trusting the proxies in trusted, a YAML list) with routes guarded
// by IP access policies.
func ipAccessConfig(trusted, up string) string {
	return configHead + fmt.Sprintf(`listeners: [{name: public, address: "127.0.0.1:0", trustedProxies: %s}]
routes:
  - name: allow-loopback
    match: [{path: {prefix: /allow-loopback}}]
    ipAccess: {allow: [127.0.0.0/8, "::1"]}
    backends: [{service: app}]
  - name: allow-private
    match: [{path: {prefix: /allow-private}}]
    ipAccess: {allow: [10.0.0.0/8]}
    backends: [{service: app}]
  - name: deny-loopback
    match: [{path: {prefix: /deny-loopback}}]
    ipAccess: {deny: [127.0.0.1]}
    backends: [{service: app}]
  - name: deny-wins
    match: [{path: {prefix: /deny-wins}}]
    ipAccess: {allow: [127.0.0.0/8, 10.0.0.0/8], deny: [127.0.0.1/32, 10.9.0.0/16]}
    backends: [{service: app}]
  - name: deny-doc
    match: [{path: {prefix: /deny-doc}}]
    ipAccess: {deny: [203.0.113.0/24]}
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: %q}]
`, trusted, up)
}

// TestIPAccessDirectPeer: without trusted proxies the peer address decides: an allow list that
// holds loopback admits, one that does not refuses with 403 ip_denied, a deny entry refuses even
// when an allow entry covers the address too, and a client-sent X-Forwarded-For (spoofed) moves
// nothing. Refused requests never reach the upstream.
func TestIPAccessDirectPeer(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, "up", upstreamOptions{})
	gw := startGateway(t, ipAccessConfig("[]", up.Addr))
	base := baseURL(t, gw, "public")
	c := newClient(t)

	check := func(path string, want int, fields ...string) {
		t.Helper()
		before := up.Hits.Load()
		r := do(t, c, edgeRequest(t, "GET", base+path, fields...))
		switch {
		case r.Status != want:
			t.Errorf("GET %s %q: status %d (%q), want %d", path, fields, r.Status, r.reason(), want)
		case want == 403 && r.reason() != "ip_denied":
			t.Errorf("GET %s %q: reason %q, want ip_denied", path, fields, r.reason())
		case want == 403 && up.Hits.Load() != before:
			t.Errorf("GET %s %q: refused, but the upstream saw it", path, fields)
		case want == 200 && r.Echo != nil && r.Echo.Header.Get("X-Forwarded-For") != "127.0.0.1":
			t.Errorf("GET %s %q: upstream X-Forwarded-For %q, want the peer alone", path, fields, r.Echo.Header.Get("X-Forwarded-For"))
		}
	}
	check("/allow-loopback", 200)
	check("/allow-private", 403)
	check("/deny-loopback", 403)
	check("/deny-wins", 403)
	check("/deny-doc", 200)

	// A client that is not a trusted proxy cannot claim another address.
	for _, spoof := range [][]string{
		{"X-Forwarded-For", "10.1.2.3"},
		{"X-Forwarded-For", "10.1.2.3, 10.4.5.6"},
		{"X-Forwarded-For", "10.1.2.3", "X-Real-Ip", "10.1.2.3"},
		{"Forwarded", "for=10.1.2.3"},
	} {
		check("/deny-loopback", 403, spoof...)
		check("/allow-private", 403, spoof...)
		check("/allow-loopback", 200, spoof...)
	}
}

// TestIPAccessTrustedProxy: with trustedProxies [127.0.0.1/32] the client address is the first
// untrusted one in X-Forwarded-For, read from the right, and the IP access policies judge it:
// 10.1.2.3 passes an allow list of 10.0.0.0/8, 203.0.113.9 hits a deny entry, and a request with
// no X-Forwarded-For is judged as the proxy itself.
func TestIPAccessTrustedProxy(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, "up", upstreamOptions{})
	gw := startGateway(t, ipAccessConfig("[127.0.0.1/32]", up.Addr))
	base := baseURL(t, gw, "public")
	c := newClient(t)

	for _, tc := range []struct {
		path, xff string
		want      int
	}{
		{"/allow-private", "10.1.2.3", 200},
		{"/allow-private", "203.0.113.9, 10.1.2.3", 200}, // the rightmost untrusted entry is the client
		{"/allow-private", "10.1.2.3, 203.0.113.9", 403}, // ... not the leftmost
		{"/allow-private", "10.1.2.3, 127.0.0.1", 200},   // trusted hops are skipped
		{"/allow-private", "", 403},                      // the proxy itself
		{"/allow-private", "garbage, 127.0.0.1", 403},    // unverifiable: the last trusted hop
		{"/allow-loopback", "", 200},                     // the proxy itself
		{"/allow-loopback", "10.1.2.3", 403},             // a client behind it
		{"/deny-doc", "203.0.113.9", 403},                // denied client
		{"/deny-doc", "10.1.2.3, 203.0.113.9", 403},      // denied client behind another
		{"/deny-doc", "203.0.113.9, 10.1.2.3", 200},      // the client is 10.1.2.3
		{"/deny-wins", "10.9.1.1", 403},                  // deny beats allow
		{"/deny-wins", "10.8.1.1", 200},                  // allowed, not denied
		{"/deny-loopback", "10.1.2.3", 200},              // the client is not the proxy
		{"/allow-private", "::ffff:10.1.2.3", 200},       // IPv4-mapped: compared as IPv4
		{"/deny-doc", "[2001:db8::1]:443", 200},          // malformed: the proxy itself, not denied
	} {
		var fields []string
		if tc.xff != "" {
			fields = []string{"X-Forwarded-For", tc.xff}
		}
		r := do(t, c, edgeRequest(t, "GET", base+tc.path, fields...))
		if r.Status != tc.want || tc.want == 403 && r.reason() != "ip_denied" {
			t.Errorf("GET %s with X-Forwarded-For %q: status %d (%q), want %d", tc.path, tc.xff, r.Status, r.reason(), tc.want)
			continue
		}
		if tc.want == 200 && r.Echo != nil {
			want := "127.0.0.1"
			if tc.xff != "" {
				want = tc.xff + ", 127.0.0.1"
			}
			if got := r.Echo.Header.Get("X-Forwarded-For"); got != want {
				t.Errorf("GET %s with X-Forwarded-For %q: upstream X-Forwarded-For %q, want %q", tc.path, tc.xff, got, want)
			}
		}
	}
}

// securityHeadersConfig is a listener (protocol and TLS lines in listener) with routes that add
// security headers: /all with HSTS and a CSP, /off with the optional ones turned off, and /own
// to an upstream that sets its own.
func securityHeadersConfig(listener, up, own string) string {
	return configHead + fmt.Sprintf(`listeners:
  - name: public
    address: "127.0.0.1:0"
%sroutes:
  - name: all
    match: [{path: {prefix: /all}}]
    filters:
      - securityHeaders:
          hstsMaxAge: 8760h
          hstsIncludeSubdomains: true
          hstsPreload: true
          contentSecurityPolicy: "default-src 'none'; frame-ancestors 'none'"
    backends: [{service: app}]
  - name: off
    match: [{path: {prefix: /off}}]
    filters:
      - securityHeaders: {contentTypeNosniff: false, frameOptions: "off", referrerPolicy: "off"}
    backends: [{service: app}]
  - name: own
    match: [{path: {prefix: /own}}]
    filters:
      - securityHeaders: {hstsMaxAge: 1h, frameOptions: SAMEORIGIN, contentSecurityPolicy: "default-src 'self'"}
    backends: [{service: own}]
services:
  - name: app
    endpoints: [{address: %q}]
  - name: own
    endpoints: [{address: %q}]
`, listener, up, own)
}

// ownHeadersHandler answers with security headers of its own.
var ownHeadersHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Frame-Options", "ALLOW-FROM https://partner.example.com")
	w.Header().Set("referrer-policy", "strict-origin")
	w.Header().Set("Content-Security-Policy", "default-src https:")
	w.Header().Set("Strict-Transport-Security", "max-age=60")
	_, _ = io.WriteString(w, "own")
})

// checkSingle checks that h has exactly one field name, with value want ("" for none).
func checkSingle(t *testing.T, what string, h http.Header, name, want string) {
	t.Helper()
	got := h.Values(name)
	switch {
	case want == "" && len(got) > 0:
		t.Errorf("%s: %s %q, want none", what, name, got)
	case want != "" && (len(got) != 1 || got[0] != want):
		t.Errorf("%s: %s %q, want %q once", what, name, got, want)
	}
}

// TestSecurityHeadersPlainHTTP: on plain HTTP the security-headers filter adds nosniff,
// X-Frame-Options DENY, Referrer-Policy no-referrer and the configured CSP, but never
// Strict-Transport-Security; "off" (and contentTypeNosniff false) leave those out; values the
// upstream set are kept, not replaced or doubled.
func TestSecurityHeadersPlainHTTP(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, "up", upstreamOptions{})
	own := startUpstream(t, "own", upstreamOptions{Handler: ownHeadersHandler})
	gw := startGateway(t, securityHeadersConfig("", up.Addr, own.Addr))
	base := baseURL(t, gw, "public")
	c := newClient(t)

	r := get(t, c, base+"/all")
	if r.Status != 200 || r.Echo == nil {
		t.Fatalf("GET /all: status %d (%q)", r.Status, r.reason())
	}
	checkSingle(t, "/all", r.Header, "Strict-Transport-Security", "")
	checkSingle(t, "/all", r.Header, "X-Content-Type-Options", "nosniff")
	checkSingle(t, "/all", r.Header, "X-Frame-Options", "DENY")
	checkSingle(t, "/all", r.Header, "Referrer-Policy", "no-referrer")
	checkSingle(t, "/all", r.Header, "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")

	r = get(t, c, base+"/off")
	if r.Status != 200 {
		t.Fatalf("GET /off: status %d (%q)", r.Status, r.reason())
	}
	for _, h := range []string{"Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Content-Security-Policy"} {
		checkSingle(t, "/off", r.Header, h, "")
	}

	r = get(t, c, base+"/own")
	if r.Status != 200 || string(r.Body) != "own" {
		t.Fatalf("GET /own: status %d, body %q", r.Status, r.Body)
	}
	checkSingle(t, "/own", r.Header, "X-Frame-Options", "ALLOW-FROM https://partner.example.com")
	checkSingle(t, "/own", r.Header, "Referrer-Policy", "strict-origin")
	checkSingle(t, "/own", r.Header, "Content-Security-Policy", "default-src https:")
	checkSingle(t, "/own", r.Header, "X-Content-Type-Options", "nosniff")
	// The upstream's own HSTS passes on plain HTTP: the filter only adds, it does not police.
	checkSingle(t, "/own", r.Header, "Strict-Transport-Security", "max-age=60")
}

// TestSecurityHeadersHTTPS: on an https listener the filter adds Strict-Transport-Security with
// max-age, includeSubDomains and preload, beside the other headers, over HTTP/1.1 and HTTP/2,
// and keeps an upstream's own Strict-Transport-Security.
func TestSecurityHeadersHTTPS(t *testing.T) {
	t.Parallel()
	pki := testpki.New(t, t.TempDir(), "edge.example.test")
	cert := pki.Certs["edge.example.test"]
	up := startUpstream(t, "up", upstreamOptions{})
	own := startUpstream(t, "own", upstreamOptions{Handler: ownHeadersHandler})
	gw := startGateway(t, securityHeadersConfig(fmt.Sprintf(`    protocol: https
    tls:
      certificates: [{cert: %q, key: %q}]
`, cert.Cert, cert.Key), up.Addr, own.Addr))
	addr := listenerAddr(t, gw, "public")

	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pki.Pool, ServerName: "edge.example.test"},
			ForceAttemptHTTP2: h2,
		}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		t.Cleanup(tr.CloseIdleConnections)
		c := &http.Client{Transport: tr, Timeout: 15 * time.Second}
		what := fmt.Sprintf("h2=%v", h2)

		r := get(t, c, "https://"+addr+"/all")
		if r.Status != 200 || r.Echo == nil {
			t.Fatalf("%s GET /all: status %d (%q)", what, r.Status, r.reason())
		}
		checkSingle(t, what+" /all", r.Header, "Strict-Transport-Security", "max-age=31536000; includeSubDomains; preload")
		checkSingle(t, what+" /all", r.Header, "X-Content-Type-Options", "nosniff")
		checkSingle(t, what+" /all", r.Header, "X-Frame-Options", "DENY")
		checkSingle(t, what+" /all", r.Header, "Referrer-Policy", "no-referrer")

		r = get(t, c, "https://"+addr+"/off")
		checkSingle(t, what+" /off", r.Header, "Strict-Transport-Security", "")
		checkSingle(t, what+" /off", r.Header, "X-Frame-Options", "")

		r = get(t, c, "https://"+addr+"/own")
		checkSingle(t, what+" /own", r.Header, "Strict-Transport-Security", "max-age=60")
		checkSingle(t, what+" /own", r.Header, "X-Frame-Options", "ALLOW-FROM https://partner.example.com")
	}
}

// authzCall is what the test authorization service received.
type authzCall struct {
	Method, Path, Query, Host string
	Header                    http.Header
	BodyLen                   int
}

// authzService is a test external authorization service. It admits requests carrying
// "Authorization: Bearer good" with X-User-Id 42 and X-Consumer tenant-a (plus a header that is
// not listed for the upstream), answers requests without Authorization 401 with a challenge, and
// refuses the rest 403 with a short body. Paths under /slow wait until the caller gives up.
type authzService struct {
	mu    sync.Mutex
	calls []authzCall
}

// last returns the last call, and the number of calls.
func (s *authzService) last() (authzCall, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) == 0 {
		return authzCall{}, 0
	}
	return s.calls[len(s.calls)-1], len(s.calls)
}

// count returns the number of calls.
func (s *authzService) count() int {
	_, n := s.last()
	return n
}

func (s *authzService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.calls = append(s.calls, authzCall{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host,
		Header: r.Header.Clone(), BodyLen: len(body)})
	s.mu.Unlock()
	if strings.HasPrefix(r.URL.Path, "/slow/") {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return
	}
	switch r.Header.Get("Authorization") {
	case "Bearer good":
		w.Header().Set("X-User-Id", "42")
		w.Header().Set("X-Consumer", "tenant-a")
		w.Header().Set("X-Authz-Internal", "not for the upstream")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "ok")
	case "":
		w.Header().Set("WWW-Authenticate", `Bearer realm="edge"`)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, "log in first\n")
	default:
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Authz-Internal", "not for the client")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "denied by policy\n")
	}
}

// extAuthzConfig routes /api, /slow, /open, /down and /defaults through external authorization
// services: the one at svc (with a path prefix), the same service's slow paths failing closed and
// open, an address nobody listens on, and svc again with the default settings.
func extAuthzConfig(svc, down, up string) string {
	return configHead + fmt.Sprintf(`listeners: [{name: public, address: "127.0.0.1:0"}]
consumers:
  - name: tenant-a
    groups: [tenants]
authenticators:
  - name: authsvc
    extAuthz:
      url: "http://%[1]s/check"
      timeout: 5s
      forwardHeaders: [Authorization, X-Tenant]
      upstreamHeaders: [X-User-Id]
      consumerHeader: X-Consumer
  - name: slow
    extAuthz: {url: "http://%[1]s/slow", timeout: 100ms, upstreamHeaders: [X-User-Id]}
  - name: slow-open
    extAuthz: {url: "http://%[1]s/slow", timeout: 100ms, failOpen: true, upstreamHeaders: [X-User-Id]}
  - name: down
    extAuthz: {url: "http://%[2]s", timeout: 10s}
  - name: defaults
    extAuthz: {url: "http://%[1]s/check"}
routes:
  - name: api
    match: [{path: {prefix: /api}}]
    auth: {authenticators: [authsvc]}
    authz:
      rules: [{name: tenants, action: allow, groups: [tenants]}]
    backends: [{service: app}]
  - name: slow
    match: [{path: {prefix: /slow}}]
    auth: {authenticators: [slow]}
    backends: [{service: app}]
  - name: open
    match: [{path: {prefix: /open}}]
    auth: {authenticators: [slow-open]}
    backends: [{service: app}]
  - name: down
    match: [{path: {prefix: /down}}]
    auth: {authenticators: [down]}
    backends: [{service: app}]
  - name: defaults
    match: [{path: {prefix: /defaults}}]
    auth: {authenticators: [defaults]}
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: %[3]q}]
`, svc, down, up)
}

// startExtAuthz starts an upstream, the authorization service and a gateway running
// extAuthzConfig.
func startExtAuthz(t *testing.T) (up *upstream, svc *authzService, base string, c *http.Client) {
	t.Helper()
	up = startUpstream(t, "up", upstreamOptions{})
	svc = &authzService{}
	srv := startUpstream(t, "authz", upstreamOptions{Handler: svc})
	gw := startGateway(t, extAuthzConfig(srv.Addr, freeAddr(t), up.Addr))
	return up, svc, baseURL(t, gw, "public"), newClient(t)
}

// TestExtAuthzAdmits: a request the service admits reaches the upstream with the service's
// X-User-Id (the one the client sent is removed, as is any answer header not listed), and the
// consumer the service names maps to the configured consumer, whose group an authorization rule
// admits. The service sees the original method, path (under its URL's path) and query, the
// original Host, and only the forwarded headers, without the body.
func TestExtAuthzAdmits(t *testing.T) {
	t.Parallel()
	_, svc, base, c := startExtAuthz(t)

	req, err := http.NewRequest("POST", base+"/api/items/7?expand=owner&sort=-date", strings.NewReader("the body"))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "shop.example.com"
	for name, value := range map[string]string{"Authorization": "Bearer good", "X-Tenant": "t1",
		"X-User-Id": "1", "X-Secret": "s3cr3t", "Cookie": "sid=abc", "X-Meshgate-Consumer": "admin"} {
		req.Header.Set(name, value)
	}
	r := do(t, c, req)
	if r.Status != 200 || r.Echo == nil {
		t.Fatalf("admitted request: status %d (%q) %q, want 200 from the upstream", r.Status, r.reason(), r.Body)
	}
	if got := r.Echo.Header.Values("X-User-Id"); !slices.Equal(got, []string{"42"}) {
		t.Errorf("upstream X-User-Id %q, want [42] (the service's, not the client's)", got)
	}
	if got := r.Echo.Header.Values("X-Meshgate-Consumer"); !slices.Equal(got, []string{"tenant-a"}) {
		t.Errorf("upstream X-Meshgate-Consumer %q, want [tenant-a]", got)
	}
	if got := r.Echo.Header.Get("X-Authz-Internal"); got != "" {
		t.Errorf("upstream got the unlisted service header X-Authz-Internal %q", got)
	}
	if r.Echo.Method != "POST" || r.Echo.URI != "/api/items/7?expand=owner&sort=-date" || r.Echo.BodyLen != int64(len("the body")) {
		t.Errorf("upstream saw %s %s with %d body bytes", r.Echo.Method, r.Echo.URI, r.Echo.BodyLen)
	}

	call, n := svc.last()
	if n != 1 {
		t.Fatalf("the service was called %d times, want 1", n)
	}
	if call.Method != "POST" || call.Path != "/check/api/items/7" || call.Query != "expand=owner&sort=-date" {
		t.Errorf("the service saw %s %s ? %s, want POST /check/api/items/7 ? expand=owner&sort=-date", call.Method, call.Path, call.Query)
	}
	if call.Host != "shop.example.com" {
		t.Errorf("the service saw Host %q, want the original shop.example.com", call.Host)
	}
	if call.BodyLen != 0 {
		t.Errorf("the service got %d body bytes, want none", call.BodyLen)
	}
	if got := call.Header.Get("Authorization"); got != "Bearer good" {
		t.Errorf("the service saw Authorization %q", got)
	}
	if got := call.Header.Get("X-Tenant"); got != "t1" {
		t.Errorf("the service saw X-Tenant %q", got)
	}
	for _, h := range []string{"X-Secret", "Cookie", "X-User-Id", "X-Meshgate-Consumer", "X-Forwarded-For", "X-Request-Id", "Content-Type"} {
		if v := call.Header.Get(h); v != "" {
			t.Errorf("the service saw %s %q, which is not a forwarded header", h, v)
		}
	}

	// By default the service sees Authorization, Cookie, and the X-Forwarded-* and X-Request-Id
	// fields meshgate set, and nothing else the client sent.
	r = do(t, c, edgeRequest(t, "GET", base+"/defaults/x", "Authorization", "Bearer good", "Cookie", "sid=abc",
		"X-Secret", "s3cr3t", "X-Forwarded-For", "10.9.9.9", "Forwarded", "for=10.9.9.9", "X-Request-Id", "req-1"))
	if r.Status != 200 {
		t.Fatalf("GET /defaults/x: status %d (%q)", r.Status, r.reason())
	}
	call, _ = svc.last()
	for name, want := range map[string]string{"Authorization": "Bearer good", "Cookie": "sid=abc",
		"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": strings.TrimPrefix(base, "http://"),
		"X-Request-Id": "req-1", "Forwarded": "", "X-Secret": ""} {
		if got := call.Header.Values(name); want == "" && len(got) > 0 || want != "" && !slices.Equal(got, []string{want}) {
			t.Errorf("default forwarding: the service saw %s %q, want %q", name, got, want)
		}
	}
}

// TestExtAuthzDenies: a refusal from the service is relayed to the client (its status, its body,
// its WWW-Authenticate challenge) with reason ext_authz_denied, and the request never reaches the
// upstream; other headers of the refusal stay behind.
func TestExtAuthzDenies(t *testing.T) {
	t.Parallel()
	up, svc, base, c := startExtAuthz(t)

	r := do(t, c, edgeRequest(t, "GET", base+"/api/items", "Authorization", "Bearer bad"))
	if r.Status != 403 || r.reason() != "ext_authz_denied" || string(r.Body) != "denied by policy\n" {
		t.Errorf("bad token: status %d (%q) body %q, want 403 ext_authz_denied with the service's body", r.Status, r.reason(), r.Body)
	}
	if v := r.Header.Get("X-Authz-Internal"); v != "" {
		t.Errorf("bad token: the service's X-Authz-Internal %q reached the client", v)
	}
	if ct := r.Header.Get("Content-Type"); ct != "text/plain" {
		t.Errorf("bad token: Content-Type %q, want the service's text/plain", ct)
	}

	r = get(t, c, base+"/api/items")
	if r.Status != 401 || r.reason() != "ext_authz_denied" || string(r.Body) != "log in first\n" {
		t.Errorf("no token: status %d (%q) body %q, want 401 ext_authz_denied with the service's body", r.Status, r.reason(), r.Body)
	}
	if got := r.Header.Get("WWW-Authenticate"); got != `Bearer realm="edge"` {
		t.Errorf("no token: WWW-Authenticate %q, want the service's challenge", got)
	}
	if n := svc.count(); n != 2 {
		t.Errorf("the service was called %d times, want 2", n)
	}
	if n := up.Hits.Load(); n != 0 {
		t.Errorf("the upstream saw %d refused requests", n)
	}
}

// TestExtAuthzUnavailable: a service slower than the timeout refuses the request with 503
// ext_authz_unavailable, or admits it (anonymously, without the service's headers) when the
// authenticator fails open; a service nobody listens on refuses at once, long before its timeout.
func TestExtAuthzUnavailable(t *testing.T) {
	t.Parallel()
	up, _, base, c := startExtAuthz(t)

	r := do(t, c, edgeRequest(t, "GET", base+"/slow/x", "Authorization", "Bearer good"))
	if r.Status != 503 || r.reason() != "ext_authz_unavailable" {
		t.Errorf("slow service, fail closed: status %d (%q), want 503 ext_authz_unavailable", r.Status, r.reason())
	}
	if n := up.Hits.Load(); n != 0 {
		t.Errorf("slow service, fail closed: the upstream saw %d requests", n)
	}

	r = do(t, c, edgeRequest(t, "GET", base+"/open/x", "Authorization", "Bearer good", "X-User-Id", "1"))
	if r.Status != 200 || r.Echo == nil {
		t.Fatalf("slow service, fail open: status %d (%q), want 200 from the upstream", r.Status, r.reason())
	}
	for _, h := range []string{"X-User-Id", "X-Meshgate-Consumer"} {
		if v := r.Echo.Header.Get(h); v != "" {
			t.Errorf("slow service, fail open: upstream %s %q, want none", h, v)
		}
	}

	// Nothing listens at the down service's address: the connection is refused at once, so
	// the answer comes far sooner than the 10s timeout.
	start := time.Now()
	r = do(t, c, edgeRequest(t, "GET", base+"/down/x", "Authorization", "Bearer good"))
	took := time.Since(start)
	if r.Status != 503 || r.reason() != "ext_authz_unavailable" {
		t.Errorf("service down: status %d (%q), want 503 ext_authz_unavailable", r.Status, r.reason())
	}
	if took > 5*time.Second {
		t.Errorf("service down: the answer took %v; a refused connection should not wait for the 10s timeout", took)
	}
}

// TestExtAuthzReloadClosesConnections: a check still running when a reload replaces the
// authenticator finishes normally, and the connection it used to reach the authorization service
// does not outlive the gateway: once the gateway has stopped, the service sees every connection
// closed.
func TestExtAuthzReloadClosesConnections(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, "up", upstreamOptions{})
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var open sync.WaitGroup // connections the service has open
	var mu sync.Mutex
	states := map[net.Conn]http.ConnState{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/check/hold" {
			entered <- struct{}{}
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Done()
		}
		states[c] = s
	}
	srv.Start()
	t.Cleanup(srv.Close)
	cfg := configHead + fmt.Sprintf(`listeners: [{name: public, address: "127.0.0.1:0"}]
authenticators:
  - name: authsvc
    extAuthz: {url: "http://%s/check", timeout: 15s}
routes:
  - name: all
    auth: {authenticators: [authsvc]}
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: %q}]
`, srv.Listener.Addr().String(), up.Addr)
	gw := startGateway(t, cfg)
	base := baseURL(t, gw, "public")
	c := newClient(t)

	if r := get(t, c, base+"/before"); r.Status != 200 {
		t.Fatalf("GET /before: status %d (%q)", r.Status, r.reason())
	}
	done := make(chan *result, 1)
	go func() {
		resp, err := c.Get(base + "/hold")
		if err != nil {
			t.Errorf("GET /hold: %v", err)
			done <- nil
			return
		}
		r, _ := readResult(resp)
		done <- r
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the check of GET /hold never reached the service")
	}
	// A changed timeout: a new authenticator replaces the one running the check.
	reload(t, gw, strings.Replace(cfg, "timeout: 15s", "timeout: 14s", 1))
	close(release)
	if r := <-done; r != nil && r.Status != 200 {
		t.Errorf("GET /hold across the reload: status %d (%q), want 200", r.Status, r.reason())
	}
	if r := get(t, c, base+"/after"); r.Status != 200 {
		t.Fatalf("GET /after: status %d (%q)", r.Status, r.reason())
	}

	shutdownGateway(t, gw)
	closed := make(chan struct{})
	go func() { open.Wait(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		var left []string
		for conn, s := range states {
			if s != http.StateClosed && s != http.StateHijacked {
				left = append(left, conn.RemoteAddr().String()+" "+s.String())
			}
		}
		t.Fatalf("the gateway stopped but left connections to the authorization service open: %v", left)
	}
}
