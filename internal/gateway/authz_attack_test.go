package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
)

// authzCarolKey is the API key of a consumer without groups.
const authzCarolKey = "carol-key-5555555555"

// authzConfig is the config of the authorization tests: one route per kind of condition, a
// listener with defaultDeny and one that trusts loopback proxies.
func authzConfig(echo, jwksURL string) string {
	return configHead + fmt.Sprintf(`listeners:
  - {name: edge, address: "127.0.0.1:0"}
  - name: closed
    address: "127.0.0.1:0"
    security: {defaultDeny: true}
  - name: trusted
    address: "127.0.0.1:0"
    trustedProxies: [127.0.0.1/32]
authenticators:
  - name: keys
    apiKey: {}
  - name: jwt
    jwt:
      jwksURL: %q
      algorithms: [RS256, ES256]
      issuer: %q
      audiences: [%q]
consumers:
  - name: alice
    groups: [admins]
    apiKeys: [{sha256: %q}]
    jwtSubjects: [alice-sub]
  - name: bob
    groups: [ops, readers]
    apiKeys: [{sha256: %q}]
    jwtSubjects: [bob-sub]
  - name: carol
    apiKeys: [{sha256: %q}]
routes:
  - name: consumers
    match: [{path: {prefix: /consumers}}]
    auth: {authenticators: [keys, jwt]}
    authz: {rules: [{name: alice-only, action: allow, consumers: [alice]}]}
    backends: [{service: echo}]
  - name: any-consumer
    match: [{path: {prefix: /any}}]
    auth: {authenticators: [keys, jwt], optional: true}
    authz: {rules: [{name: any, action: allow, consumers: ["*"]}]}
    backends: [{service: echo}]
  - name: groups
    match: [{path: {prefix: /groups}}]
    auth: {authenticators: [keys, jwt]}
    authz: {rules: [{name: ops, action: allow, groups: [ops]}]}
    backends: [{service: echo}]
  - name: claims
    match: [{path: {prefix: /claims}}]
    auth: {authenticators: [keys, jwt]}
    authz:
      rules:
        - {name: writers, action: allow, claims: [{name: scope, values: [write]}]}
        - {name: admin-role, action: allow, claims: [{name: roles, values: [admin]}]}
    backends: [{service: echo}]
  - name: methods
    match: [{path: {prefix: /methods}}]
    authz: {rules: [{name: reads, action: allow, methods: [GET, HEAD]}]}
    backends: [{service: echo}]
  - name: paths
    match: [{path: {prefix: /paths}}]
    authz:
      rules:
        - {name: public, action: allow, paths: [{prefix: /paths/public}, {exact: /paths/index}]}
        - {name: reports, action: allow, paths: [{regex: "/paths/reports/[0-9]+"}]}
    backends: [{service: echo}]
  - name: headers
    match: [{path: {prefix: /headers}}]
    authz: {rules: [{name: acme, action: allow, headers: [{name: X-Tenant, value: acme}, {name: X-Trace, present: true}]}]}
    backends: [{service: echo}]
  - name: loopback
    match: [{path: {prefix: /loopback}}]
    authz: {rules: [{name: loopback, action: allow, sourceCIDRs: [127.0.0.0/8]}]}
    backends: [{service: echo}]
  - name: ten
    match: [{path: {prefix: /ten}}]
    authz: {rules: [{name: ten, action: allow, sourceCIDRs: [10.0.0.0/8]}]}
    backends: [{service: echo}]
  - name: cel
    match: [{path: {prefix: /cel}}]
    auth: {authenticators: [keys], optional: true}
    authz:
      rules:
        - name: debug-get
          action: allow
          cel: 'request.method == "GET" && "x-debug" in request.headers'
        - name: no-bob
          action: deny
          cel: 'consumer.name == "bob"'
    backends: [{service: echo}]
  - name: cel-fail
    match: [{path: {prefix: /celfail}}]
    authz:
      default: allow
      rules: [{name: flag-off, action: deny, cel: 'request.headers["x-flag"] == "off"'}]
    backends: [{service: echo}]
  - name: deny-wins
    match: [{path: {prefix: /denywins}}]
    auth: {authenticators: [keys]}
    authz:
      rules:
        - {name: everyone, action: allow, consumers: ["*"]}
        - {name: not-bob, action: deny, consumers: [bob]}
        - {name: not-ops, action: deny, groups: [ops]}
    backends: [{service: echo}]
  - name: default-allow
    match: [{path: {prefix: /defaultallow}}]
    authz: {default: allow, rules: [{name: no-delete, action: deny, methods: [DELETE]}]}
    backends: [{service: echo}]
  - name: jwt-only
    match: [{path: {prefix: /jwtonly}}]
    auth: {authenticators: [jwt]}
    backends: [{service: echo}]
  - name: unguarded
    match: [{path: {prefix: /unguarded}}]
    backends: [{service: echo}]
  - name: guarded
    match: [{path: {prefix: /guarded}}]
    authz: {rules: [{name: get-ok, action: allow, methods: [GET]}]}
    backends: [{service: echo}]
services:
  - name: echo
    endpoints: [{address: %q}]
`, jwksURL, authnIssuer, authnAudience, keyDigest(authnAliceKey), keyDigest(authnBobKey), keyDigest(authzCarolKey), echo)
}

// TestAuthzRules: each kind of condition (consumers, "*", groups, claims with scope splitting,
// methods, paths, headers, source CIDRs, CEL, CEL failing closed) admits and refuses what it
// should; a matching deny rule wins over a matching allow rule; the default decides when nothing
// matches; a defaultDeny listener refuses a route without a policy. Every decision moves
// meshgate_authz_decisions_total under the name of the rule that took it.
func TestAuthzRules(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, "echo", upstreamOptions{})
	jwks := startJWKS(t)
	gw := startGateway(t, authzConfig(up.Addr, jwks.URL))
	c := newClient(t)
	rsa := authnRSAKey()
	token := func(sub string, kv ...any) string {
		return "Bearer " + signJWT(t, jwa.RS256(), rsa, "rsa-1", withClaims(jwtClaims(sub), kv...))
	}
	const (
		key    = "X-API-Key"
		authz  = "Authorization"
		denied = "authz_denied"
	)
	for _, tc := range []struct {
		desc     string
		listener string // edge when empty
		method   string // GET when empty
		path     string
		fields   []string
		status   int
		rule     string // the deciding rule
	}{
		{desc: "consumer listed", path: "/consumers/x", fields: []string{key, authnAliceKey}, status: 200, rule: "alice-only"},
		{desc: "consumer listed, by JWT", path: "/consumers/x", fields: []string{authz, token("alice-sub")}, status: 200, rule: "alice-only"},
		{desc: "consumer not listed", path: "/consumers/x", fields: []string{key, authnBobKey}, status: 403, rule: "default"},
		{desc: "JWT without a consumer", path: "/consumers/x", fields: []string{authz, token("alice")}, status: 403, rule: "default"},
		{desc: "any consumer: a consumer", path: "/any/x", fields: []string{key, authzCarolKey}, status: 200, rule: "any"},
		{desc: "any consumer: anonymous", path: "/any/x", status: 403, rule: "default"},
		{desc: "any consumer: JWT without a consumer", path: "/any/x", fields: []string{authz, token("nobody")}, status: 403, rule: "default"},
		{desc: "group member", path: "/groups/x", fields: []string{key, authnBobKey}, status: 200, rule: "ops"},
		{desc: "group member by JWT", path: "/groups/x", fields: []string{authz, token("bob-sub")}, status: 200, rule: "ops"},
		{desc: "not a group member", path: "/groups/x", fields: []string{key, authnAliceKey}, status: 403, rule: "default"},
		{desc: "consumer without groups", path: "/groups/x", fields: []string{key, authzCarolKey}, status: 403, rule: "default"},
		{desc: "scope among several", path: "/claims/x", fields: []string{authz, token("x", "scope", "read write")}, status: 200, rule: "writers"},
		{desc: "scope with extra spaces", path: "/claims/x", fields: []string{authz, token("x", "scope", " read  write ")}, status: 200, rule: "writers"},
		{desc: "scope as a list", path: "/claims/x", fields: []string{authz, token("x", "scope", []string{"read", "write"})}, status: 200, rule: "writers"},
		{desc: "scope missing", path: "/claims/x", fields: []string{authz, token("x", "scope", "read")}, status: 403, rule: "default"},
		{desc: "scope that only starts like it", path: "/claims/x", fields: []string{authz, token("x", "scope", "write-all read")}, status: 403, rule: "default"},
		{desc: "scope in another case", path: "/claims/x", fields: []string{authz, token("x", "scope", "WRITE")}, status: 403, rule: "default"},
		{desc: "list claim", path: "/claims/x", fields: []string{authz, token("x", "roles", []string{"user", "admin"})}, status: 200, rule: "admin-role"},
		{desc: "string claim", path: "/claims/x", fields: []string{authz, token("x", "roles", "admin")}, status: 200, rule: "admin-role"},
		{desc: "non-scope string is not split", path: "/claims/x", fields: []string{authz, token("x", "roles", "user admin")}, status: 403, rule: "default"},
		{desc: "claims without a JWT", path: "/claims/x", fields: []string{key, authnAliceKey}, status: 403, rule: "default"},
		{desc: "method allowed", path: "/methods/x", status: 200, rule: "reads"},
		{desc: "method refused", method: "POST", path: "/methods/x", status: 403, rule: "default"},
		{desc: "method in lower case", method: "get", path: "/methods/x", status: 403, rule: "default"},
		{desc: "path prefix", path: "/paths/public/a", status: 200, rule: "public"},
		{desc: "path prefix itself", path: "/paths/public", status: 200, rule: "public"},
		{desc: "path prefix is by segment", path: "/paths/publicity", status: 403, rule: "default"},
		{desc: "exact path", path: "/paths/index", status: 200, rule: "public"},
		{desc: "exact path is exact", path: "/paths/index/x", status: 403, rule: "default"},
		{desc: "dot segments resolved first", path: "/paths/public/../secret", status: 403, rule: "default"},
		{desc: "regex path", path: "/paths/reports/42", status: 200, rule: "reports"},
		{desc: "regex is anchored", path: "/paths/reports/42/x", status: 403, rule: "default"},
		{desc: "headers all match", path: "/headers/x", fields: []string{"X-Tenant", "acme", "X-Trace", ""}, status: 200, rule: "acme"},
		{desc: "header name in another case", path: "/headers/x", fields: []string{"x-tenant", "acme", "x-trace", "1"}, status: 200, rule: "acme"},
		{desc: "a header missing", path: "/headers/x", fields: []string{"X-Tenant", "acme"}, status: 403, rule: "default"},
		{desc: "a header value differs", path: "/headers/x", fields: []string{"X-Tenant", "ACME", "X-Trace", "1"}, status: 403, rule: "default"},
		{desc: "loopback source", path: "/loopback/x", status: 200, rule: "loopback"},
		{desc: "source outside the CIDR", path: "/ten/x", status: 403, rule: "default"},
		{desc: "CEL true", path: "/cel/x", fields: []string{"X-Debug", "1"}, status: 200, rule: "debug-get"},
		{desc: "CEL false", path: "/cel/x", status: 403, rule: "default"},
		{desc: "CEL false by method", method: "POST", path: "/cel/x", fields: []string{"X-Debug", "1"}, status: 403, rule: "default"},
		{desc: "CEL deny on the consumer wins", path: "/cel/x", fields: []string{"X-Debug", "1", key, authnBobKey}, status: 403, rule: "no-bob"},
		{desc: "CEL deny does not match another consumer", path: "/cel/x", fields: []string{"X-Debug", "1", key, authnAliceKey}, status: 200, rule: "debug-get"},
		{desc: "CEL error fails closed in a deny rule", path: "/celfail/x", status: 403, rule: "flag-off"},
		{desc: "CEL deny rule false", path: "/celfail/x", fields: []string{"X-Flag", "on"}, status: 200, rule: "default"},
		{desc: "CEL deny rule true", path: "/celfail/x", fields: []string{"X-Flag", "off"}, status: 403, rule: "flag-off"},
		{desc: "allow matches, nothing denies", path: "/denywins/x", fields: []string{key, authnAliceKey}, status: 200, rule: "everyone"},
		{desc: "deny wins over allow", path: "/denywins/x", fields: []string{key, authnBobKey}, status: 403, rule: "not-bob"},
		{desc: "default allow", path: "/defaultallow/x", status: 200, rule: "default"},
		{desc: "deny under default allow", method: "DELETE", path: "/defaultallow/x", status: 403, rule: "no-delete"},
		{desc: "defaultDeny: route without a policy", listener: "closed", path: "/unguarded/x", status: 403, rule: "default"},
		{desc: "defaultDeny: route with a policy", listener: "closed", path: "/guarded/x", status: 200, rule: "get-ok"},
		{desc: "defaultDeny: the policy still refuses", listener: "closed", method: "POST", path: "/guarded/x", status: 403, rule: "default"},
		{desc: "the same route on another listener is open", path: "/unguarded/x", status: 200},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			listener, method := tc.listener, tc.method
			if listener == "" {
				listener = "edge"
			}
			if method == "" {
				method = "GET"
			}
			req, err := http.NewRequest(method, baseURL(t, gw, listener)+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i+1 < len(tc.fields); i += 2 {
				req.Header.Add(tc.fields[i], tc.fields[i+1])
			}
			route := routeOfPath(tc.path)
			decision := map[bool]string{true: "allow", false: "deny"}[tc.status == 200]
			labels := map[string]string{"route": route, "rule": tc.rule, "decision": decision}
			before, _ := metricValue(t, gw, "meshgate_authz_decisions_total", labels)
			r := do(t, c, req)
			wantReason := ""
			if tc.status == 403 {
				wantReason = denied
			}
			if r.Status != tc.status || r.reason() != wantReason {
				t.Fatalf("status %d reason %q; want %d %q (body %q)", r.Status, r.reason(), tc.status, wantReason, r.Body)
			}
			if tc.status == 200 && method != "HEAD" && r.Echo == nil {
				t.Fatalf("no echo from the upstream")
			}
			if tc.status != 200 && r.Echo != nil {
				t.Fatalf("a refused request reached the upstream")
			}
			if tc.rule == "" {
				return
			}
			if after, _ := metricValue(t, gw, "meshgate_authz_decisions_total", labels); after != before+1 {
				t.Errorf("meshgate_authz_decisions_total%v went from %v to %v; want one more", labels, before, after)
			}
		})
	}
}

// routeOfPath names the route of authzConfig that serves path.
func routeOfPath(path string) string {
	switch first := strings.Split(path, "/")[1]; first {
	case "any":
		return "any-consumer"
	case "celfail":
		return "cel-fail"
	case "denywins":
		return "deny-wins"
	case "defaultallow":
		return "default-allow"
	default:
		return first
	}
}

// trickConfig is the config of the path and host trick tests. Route "tricks" serves every path
// and every host except admin.example.com, and denies the prefix /admin and the exact path
// /secret; route "public" allows only the prefix /public; route "admin-host" serves the host
// admin.example.com and admits only group ops. The upstream behind them serves any path,
// /admin included.
func trickConfig(echo string) string {
	return configHead + fmt.Sprintf(`listeners:
  - {name: edge, address: "127.0.0.1:0"}
routes:
  - name: tricks
    authz:
      default: allow
      rules:
        - {name: no-admin, action: deny, paths: [{prefix: /admin}]}
        - {name: no-secret, action: deny, paths: [{exact: /secret}]}
    backends: [{service: echo}]
  - name: public
    match: [{path: {prefix: /public}}]
    authz: {rules: [{name: public, action: allow, paths: [{prefix: /public}]}]}
    backends: [{service: echo}]
  - name: admin-host
    hosts: [admin.example.com]
    authz: {rules: [{name: ops, action: allow, groups: [ops]}]}
    backends: [{service: echo}]
services:
  - name: echo
    endpoints: [{address: %q}]
`, echo)
}

// underAdmin reports whether an upstream could take the request-target target for a path
// under /admin: as it is, without its query, with matrix parameters (";...") removed from every
// segment, or with percent-escapes decoded once.
func underAdmin(target string) bool {
	path, _, _ := strings.Cut(target, "?")
	var stripped []string
	for _, seg := range strings.Split(path, "/") {
		s, _, _ := strings.Cut(seg, ";")
		stripped = append(stripped, s)
	}
	forms := []string{path, strings.Join(stripped, "/")}
	if dec, err := pathUnescape(path); err == nil {
		forms = append(forms, dec)
	}
	for _, p := range forms {
		for strings.Contains(p, "//") {
			p = strings.ReplaceAll(p, "//", "/")
		}
		if p == "/admin" || strings.HasPrefix(p, "/admin/") || p == "/secret" {
			return true
		}
	}
	return false
}

// pathUnescape decodes every percent-escape of s once.
func pathUnescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("truncated escape")
		}
		var v byte
		if _, err := fmt.Sscanf(s[i+1:i+3], "%02x", &v); err != nil {
			return "", err
		}
		b.WriteByte(v)
		i += 2
	}
	return b.String(), nil
}

// TestAuthzPathTricks sends, as raw request lines, paths that try to reach /admin (denied by
// prefix) or /secret (denied exactly) past the authorization policy: repeated slashes, dot
// segments plain and encoded, encoded and raw (back)slashes, fragments, matrix parameters,
// double encoding, NUL, encoded unreserved characters, case changes and absolute-form targets.
// Each must be refused (400 for a path that cannot be normalised safely, 403 by the deny rule)
// or reach the upstream as a path that is not under /admin, and the case says which. "/ADMIN" is
// a different path (paths are case-sensitive): it is served, and the upstream receives exactly
// "/ADMIN".
func TestAuthzPathTricks(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, "echo", upstreamOptions{})
	gw := startGateway(t, trickConfig(up.Addr))
	addr := listenerAddr(t, gw, "edge")
	const (
		deny    = 403
		badPath = 400
	)
	for _, tc := range []struct {
		target string
		status int
		reason string // for 400; 403 is always authz_denied
		uri    string // for 200: what the upstream must receive
	}{
		{target: "/admin", status: deny},
		{target: "/admin/", status: deny},
		{target: "/admin/users", status: deny},
		{target: "/admin?x=1", status: deny},
		{target: "//admin", status: deny},
		{target: "///admin//users", status: deny},
		{target: "/./admin", status: deny},
		{target: "/x/../admin", status: deny},
		{target: "/../admin", status: deny},
		{target: "/%2e%2e/admin", status: deny},
		{target: "/%2E%2E/admin", status: deny},
		{target: "/x/%2e%2e/admin", status: deny},
		{target: "/x/.%2e/admin", status: deny},
		{target: "/%2e/admin", status: deny},
		{target: "/%2Fadmin", status: badPath, reason: "bad_path"},
		{target: "/%2fadmin", status: badPath, reason: "bad_path"},
		{target: "/x%2F..%2Fadmin", status: badPath, reason: "bad_path"},
		{target: "/%5Cadmin", status: badPath, reason: "bad_path"},
		{target: `/\admin`, status: badPath, reason: "bad_path"},
		{target: `/x/..\admin`, status: badPath, reason: "bad_path"},
		{target: "/admin#frag", status: badPath, reason: "bad_path"},
		{target: "/x#/../admin", status: badPath, reason: "bad_path"},
		{target: "/admin;x", status: deny},
		{target: "/admin;x/y", status: deny},
		{target: "/admin;jsessionid=1/users", status: deny},
		{target: "/;x/admin", status: deny},
		{target: "/x/..;/admin", status: badPath, reason: "bad_path"},
		{target: "/x/.;/admin", status: badPath, reason: "bad_path"},
		{target: "/x/%2e%2e;/admin", status: badPath, reason: "bad_path"},
		{target: "/public/..;/admin", status: badPath, reason: "bad_path"},
		{target: "/secret;x", status: deny},
		{target: "/secret", status: deny},
		{target: "/admin%3Bx", status: 200, uri: "/admin%3Bx"},
		{target: "/%252Fadmin", status: 200, uri: "/%252Fadmin"},
		{target: "/%252e%252e/admin", status: 200, uri: "/%252e%252e/admin"},
		{target: "/ADMIN", status: 200, uri: "/ADMIN"},
		{target: "/Admin/users", status: 200, uri: "/Admin/users"},
		{target: "/admin%00", status: badPath, reason: "bad_path"},
		{target: "/admin%0d%0aX-Injected:%201", status: badPath, reason: "bad_path"},
		{target: "/%61dmin", status: deny},
		{target: "/%61%64%6D%69%6E/users", status: deny},
		{target: "/adminx", status: 200, uri: "/adminx"},
		{target: "/x/admin", status: 200, uri: "/x/admin"},
		{target: "http://app.example.com/admin", status: deny},
		{target: "http://app.example.com//x/../admin", status: deny},
		{target: "/public/x", status: 200, uri: "/public/x"},
		{target: "/public;jsessionid=1/x", status: 200, uri: "/public;jsessionid=1/x"},
		{target: "/public/../admin", status: deny},
	} {
		t.Run(tc.target, func(t *testing.T) {
			r := rawExchange(t, addr, rawGet(tc.target, "app.example.com"))
			reason := tc.reason
			if tc.status == deny {
				reason = "authz_denied"
			}
			if r.Status != tc.status || r.reason() != reason {
				var got string
				if r.Echo != nil {
					got = fmt.Sprintf(" (the upstream received %q)", r.Echo.URI)
				}
				t.Fatalf("status %d reason %q; want %d %q%s", r.Status, r.reason(), tc.status, reason, got)
			}
			if tc.status != 200 {
				if r.Echo != nil {
					t.Fatalf("a refused request reached the upstream as %q", r.Echo.URI)
				}
				return
			}
			if r.Echo == nil {
				t.Fatalf("no echo from the upstream: body %q", r.Body)
			}
			if r.Echo.URI != tc.uri {
				t.Errorf("the upstream received %q; want %q", r.Echo.URI, tc.uri)
			}
			if underAdmin(r.Echo.URI) {
				t.Errorf("the upstream received %q, which it could take for a path under /admin", r.Echo.URI)
			}
		})
	}
}

// TestAuthzHostTricks: a route scoped to admin.example.com, which admits only group ops, serves
// that host in every spelling a client may use (case, port, trailing dot, absolute-form
// target), so none of them reaches the upstream through the open catch-all route; another host
// does.
func TestAuthzHostTricks(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, "echo", upstreamOptions{})
	gw := startGateway(t, trickConfig(up.Addr))
	addr := listenerAddr(t, gw, "edge")
	for _, tc := range []struct {
		desc, req string
		status    int
	}{
		{"exact", rawGet("/x", "admin.example.com"), 403},
		{"upper case", rawGet("/x", "ADMIN.example.com"), 403},
		{"mixed case with a port", rawGet("/x", "Admin.Example.COM:80"), 403},
		{"trailing dot", rawGet("/x", "admin.example.com."), 403},
		{"upper case with a trailing dot and a port", rawGet("/x", "ADMIN.EXAMPLE.COM.:8080"), 403},
		{"absolute-form target", rawGet("http://ADMIN.example.com/x", "ADMIN.example.com"), 403},
		{"another host", rawGet("/x", "app.example.com"), 200},
		{"a host that only starts like it", rawGet("/x", "admin.example.com.evil.test"), 200},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := rawExchange(t, addr, tc.req)
			if r.Status != tc.status {
				t.Fatalf("status %d reason %q; want %d", r.Status, r.reason(), tc.status)
			}
			switch tc.status {
			case 403:
				if r.reason() != "authz_denied" || r.Echo != nil {
					t.Fatalf("reason %q, echo %v; want authz_denied and nothing upstream", r.reason(), r.Echo)
				}
			case 200:
				if r.Echo == nil || r.reason() != "" {
					t.Fatalf("reason %q and no echo from the upstream", r.reason())
				}
			}
		})
	}
}

// TestAuthzHeaderTricks: naming fields in Connection cannot make the gateway forget what it
// relies on. "Connection: X-Api-Key" removes the key as a hop-by-hop field before
// authentication, so the request is refused as unauthenticated rather than admitted as someone;
// "Connection: Authorization" likewise removes a bearer token, so a JWT-only route refuses and a
// route that also takes API keys authenticates by the key; "Connection: X-Forwarded-For" does not
// remove the X-Forwarded-For the gateway sets. A spoofed X-Forwarded-For from an untrusted peer
// does not change the source address source CIDR rules see; from a trusted proxy it does.
func TestAuthzHeaderTricks(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, "echo", upstreamOptions{})
	jwks := startJWKS(t)
	gw := startGateway(t, authzConfig(up.Addr, jwks.URL))
	edge := listenerAddr(t, gw, "edge")
	trusted := listenerAddr(t, gw, "trusted")
	bearer := "Authorization: Bearer " + signJWT(t, jwa.RS256(), authnRSAKey(), "rsa-1", jwtClaims("bob-sub"))
	for _, tc := range []struct {
		desc     string
		addr     string
		req      string
		status   int
		reason   string
		consumer string            // for 200: the consumer the upstream must see ("" for none)
		headers  map[string]string // for 200: fields the upstream must see ("" means absent)
	}{
		{desc: "Connection names the API key header", addr: edge,
			req:    rawGet("/consumers/x", "a.test", "X-API-Key: "+authnAliceKey, "Connection: X-Api-Key"),
			status: 401, reason: "unauthenticated"},
		{desc: "Connection names the API key header in another case, beside close", addr: edge,
			req:    rawGet("/consumers/x", "a.test", "X-API-Key: "+authnAliceKey, "Connection: keep-alive, x-api-key"),
			status: 401, reason: "unauthenticated"},
		{desc: "Connection names the API key header on an optional route", addr: edge,
			req:    rawGet("/cel/x", "a.test", "X-API-Key: "+authnBobKey, "X-Debug: 1", "Connection: X-Api-Key"),
			status: 200, consumer: "", headers: map[string]string{"X-Api-Key": ""}},
		{desc: "Connection names Authorization on a JWT-only route", addr: edge,
			req:    rawGet("/jwtonly/x", "a.test", bearer, "Connection: Authorization"),
			status: 401, reason: "unauthenticated"},
		{desc: "Connection names Authorization beside a valid key", addr: edge,
			req:    rawGet("/consumers/x", "a.test", bearer, "X-API-Key: "+authnAliceKey, "Connection: Authorization"),
			status: 200, consumer: "alice", headers: map[string]string{"Authorization": "", "X-Api-Key": ""}},
		{desc: "Connection names the consumer header", addr: edge,
			req:    rawGet("/consumers/x", "a.test", "X-API-Key: "+authnAliceKey, "Connection: X-Meshgate-Consumer"),
			status: 200, consumer: "alice"},
		{desc: "Connection names X-Forwarded-For", addr: edge,
			req:    rawGet("/loopback/x", "a.test", "Connection: X-Forwarded-For"),
			status: 200, headers: map[string]string{"X-Forwarded-For": "127.0.0.1"}},
		{desc: "Connection names X-Forwarded-For and the client sends one", addr: edge,
			req:    rawGet("/loopback/x", "a.test", "X-Forwarded-For: 10.1.2.3", "Connection: X-Forwarded-For"),
			status: 200, headers: map[string]string{"X-Forwarded-For": "127.0.0.1"}},
		{desc: "spoofed X-Forwarded-For from an untrusted peer", addr: edge,
			req:    rawGet("/ten/x", "a.test", "X-Forwarded-For: 10.1.2.3"),
			status: 403, reason: "authz_denied"},
		{desc: "spoofed X-Forwarded-For and X-Real-Ip and Forwarded", addr: edge,
			req:    rawGet("/ten/x", "a.test", "X-Forwarded-For: 10.1.2.3, 10.0.0.1", "X-Real-Ip: 10.1.2.3", "Forwarded: for=10.1.2.3"),
			status: 403, reason: "authz_denied"},
		{desc: "spoofed X-Forwarded-For, source allowed anyway", addr: edge,
			req:    rawGet("/loopback/x", "a.test", "X-Forwarded-For: 10.1.2.3"),
			status: 200, headers: map[string]string{"X-Forwarded-For": "127.0.0.1", "Forwarded": ""}},
		{desc: "X-Forwarded-For from a trusted proxy", addr: trusted,
			req:    rawGet("/ten/x", "a.test", "X-Forwarded-For: 10.1.2.3"),
			status: 200, headers: map[string]string{"X-Forwarded-For": "10.1.2.3, 127.0.0.1"}},
		{desc: "X-Forwarded-For from a trusted proxy, named in Connection", addr: trusted,
			req:    rawGet("/ten/x", "a.test", "X-Forwarded-For: 10.1.2.3", "Connection: X-Forwarded-For"),
			status: 403, reason: "authz_denied"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := rawExchange(t, tc.addr, tc.req)
			if r.Status != tc.status || r.reason() != tc.reason {
				t.Fatalf("status %d reason %q; want %d %q (body %q)", r.Status, r.reason(), tc.status, tc.reason, r.Body)
			}
			if tc.status != 200 {
				if r.Echo != nil {
					t.Fatalf("a refused request reached the upstream")
				}
				return
			}
			if r.Echo == nil {
				t.Fatalf("no echo from the upstream: body %q", r.Body)
			}
			if got := strings.Join(r.Echo.Header.Values("X-Meshgate-Consumer"), "|"); got != tc.consumer {
				t.Errorf("upstream saw X-Meshgate-Consumer %q; want %q", got, tc.consumer)
			}
			for name, want := range tc.headers {
				if got := strings.Join(r.Echo.Header.Values(name), "|"); got != want {
					t.Errorf("upstream saw %s %q; want %q", name, got, want)
				}
			}
		})
	}
}
