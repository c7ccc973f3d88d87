package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	writeTestCert(t, dir, "certs/api", "api.example.com")
	writeTestCert(t, dir, "certs/www", "www.example.org", "example.org")
	file := filepath.Join(dir, "gateway.yaml")

	tests := []struct {
		desc string
		yaml string
		want []string // the lines of the error, exactly, with the test's directory written DIR
	}{
		{
			desc: "everything valid at once",
			yaml: `version: 1
admin: {address: "127.0.0.1:18900", pprof: true}
accessLog: {path: stderr}
listeners:
  - name: https
    address: 0.0.0.0:18443
    protocol: https
    tls:
      minVersion: "1.3"
      certificates:
        - {cert: certs/api.crt, key: certs/api.key}
        - {cert: ` + filepath.Join(dir, "certs/www.crt") + `, key: certs/www.key}
    trustedProxies: [10.0.0.0/8, 192.168.1.1, "::1"]
    timeouts: {readHeader: 5s}
    limits: {maxBodyBytes: -1}
    paths: {keepSlashes: true, allowEncodedSlash: true}
  - name: http
    address: 127.0.0.1:18080
  - name: v6
    address: "[::1]:18080"
  - name: grpc
    address: localhost:18090
    protocol: h2c
  - {name: any1, address: "127.0.0.1:0"}
  - {name: any2, address: "127.0.0.1:0"}
routes:
  - name: api
    listeners: [https]
    hosts: [api.example.com, "*.Example.ORG", 127.0.0.1]
    match:
      - path: {prefix: /api}
        method: POST
        headers:
          - {name: X-Env, value: prod}
          - {name: x-id, regex: "[0-9]+"}
          - {name: Authorization, present: true}
        query:
          - {name: v, value: "2"}
      - path: {prefix: /v2}
    filters:
      - rewrite: {pathPrefix: /, host: "api.internal:8080"}
      - requestHeaders: {set: {X-A: "1"}, add: {Via: meshgate}, remove: [Cookie]}
      - responseHeaders: {remove: [Server]}
    backends:
      - {service: api, weight: 9}
      - {service: api-canary, weight: 0}
    timeout: 0s
  - name: exact
    match: [{path: {exact: /login}}, {path: {regex: "^/u/[a-z]+$"}}]
    filters: [{rewrite: {path: /auth}}]
    backends: [{service: api}]
  - name: to-https
    listeners: [http, v6]
    filters: [{redirect: {scheme: https, host: example.org, port: 18443, path: /, status: 308}}]
  - name: moved
    match: [{path: {prefix: /old}}]
    filters: [{redirect: {pathPrefix: /new}}]
  - name: teapot
    filters: [{respond: {status: 418, body: short and stout}}]
services:
  - name: api
    protocol: http2
    endpoints: [{address: "10.0.0.1:80", weight: 5}, {address: "api-2.internal:8080"}, {address: "[fd00::1]:80"}]
    loadBalancer: {policy: ring_hash, hash: {header: X-User}}
    healthCheck:
      http: {path: /healthz, host: "api.internal", expectedStatuses: [200, 204]}
      interval: 10s
      timeout: 9s
  - name: api-canary
    protocol: grpc
    endpoints: [{address: "127.0.0.1:18081"}]
    loadBalancer: {policy: maglev, hash: {sourceIP: true}}
    healthCheck: {tcp: {}}
    pool: {maxIdlePerEndpoint: 1, maxConnsPerEndpoint: 2, idleTimeout: 1s, connectTimeout: 1s}
  - name: lr
    endpoints: [{address: "127.0.0.1:18082"}]
    loadBalancer: {policy: least_request}
  - name: random
    endpoints: [{address: "127.0.0.1:18083"}]
    loadBalancer: {policy: random}
`,
		},
		{
			desc: "duplicate names",
			yaml: `version: 1
listeners:
  - {name: web, address: "127.0.0.1:18080"}
  - {name: web, address: "127.0.0.1:18081"}
  - {address: "127.0.0.1:18082"}
routes:
  - {name: r, backends: [{service: s}]}
  - {name: r, backends: [{service: s}]}
services:
  - {name: s, endpoints: [{address: "127.0.0.1:1"}]}
  - {name: s, endpoints: [{address: "127.0.0.1:1"}]}
`,
			want: []string{
				`DIR/gateway.yaml:4: listener "web": name: "web" is already the name of listeners[0] (line 3)`,
				`DIR/gateway.yaml:5: listeners[2]: name: required`,
				`DIR/gateway.yaml:8: route "r": name: "r" is already the name of routes[0] (line 7)`,
				`DIR/gateway.yaml:11: service "s": name: "s" is already the name of services[0] (line 10)`,
			},
		},
		{
			desc: "clashing and malformed addresses",
			yaml: `version: 1
admin: {address: "localhost:18900"}
listeners:
  - {name: a, address: "127.0.0.1:18080"}
  - {name: b, address: "0.0.0.0:18080"}
  - {name: c, address: "[::]:18081"}
  - {name: d, address: "127.0.0.2:18081"}
  - {name: e, address: "127.0.0.1:18900"}
  - {name: f, address: "[::ffff:127.0.0.3]:18082"}
  - {name: g, address: "127.0.0.3:18082"}
  - {name: h, address: "18083"}
  - {name: i, address: "example.com:18083"}
  - {name: j, address: "127.0.0.1:80000"}
  - {name: k}
`,
			want: []string{
				`DIR/gateway.yaml:5: listener "b": address: "0.0.0.0:18080" clashes with "127.0.0.1:18080" of listener "a" (line 4): both bind port 18080`,
				`DIR/gateway.yaml:7: listener "d": address: "127.0.0.2:18081" clashes with "[::]:18081" of listener "c" (line 6): both bind port 18081`,
				`DIR/gateway.yaml:8: listener "e": address: "127.0.0.1:18900" clashes with "localhost:18900" of admin (line 2): both bind port 18900`,
				`DIR/gateway.yaml:10: listener "g": address: "127.0.0.3:18082" clashes with "[::ffff:127.0.0.3]:18082" of listener "f" (line 9): both bind port 18082`,
				`DIR/gateway.yaml:11: listener "h": address: "18083" is not a host:port address`,
				`DIR/gateway.yaml:12: listener "i": address: host "example.com" must be an IP address, "localhost" or empty (every interface)`,
				`DIR/gateway.yaml:13: listener "j": address: port "80000" must be a number in 0..65535`,
				`DIR/gateway.yaml:14: listener "k": address: required`,
			},
		},
		{
			desc: "listener protocol, TLS and limits",
			yaml: `version: 1
admin: {address: "off"}
listeners:
  - name: a
    address: ":18080"
    protocol: spdy
  - name: b
    address: ":18081"
    protocol: https
  - name: c
    address: ":18082"
    tls: {certificates: [{cert: certs/api.crt, key: certs/api.key}]}
  - name: d
    address: ":18083"
    protocol: https
    tls:
      minVersion: "1.1"
      certificates:
        - {cert: certs/missing.crt, key: certs/api.key}
        - {cert: certs/api.crt, key: certs/www.key}
        - {cert: certs/api.crt}
        - {cert: certs, key: certs/api.key}
  - name: e
    address: ":18084"
    protocol: https
    tls: {}
    trustedProxies: [10.0.0.0/33, proxy.internal]
    timeouts: {idle: -1s}
    limits: {maxBodyBytes: -2, maxHeaderCount: -1}
`,
			want: []string{
				`DIR/gateway.yaml:6: listener "a": protocol: unknown value "spdy"; expected "http", "https" or "h2c"`,
				`DIR/gateway.yaml:7: listener "b": tls: required when protocol is "https"`,
				`DIR/gateway.yaml:12: listener "c": tls: only allowed when protocol is "https"`,
				`DIR/gateway.yaml:17: listener "d": tls.minVersion: unknown value "1.1"; expected "1.2" or "1.3"`,
				`DIR/gateway.yaml:19: listener "d": tls.certificates[0]: cannot load the certificate and key: stat DIR/certs/missing.crt: no such file or directory`,
				`DIR/gateway.yaml:20: listener "d": tls.certificates[1]: cannot load the certificate and key: private key does not match public key`,
				`DIR/gateway.yaml:21: listener "d": tls.certificates[2].key: required`,
				`DIR/gateway.yaml:22: listener "d": tls.certificates[3]: cannot load the certificate and key: DIR/certs is not a regular file`,
				`DIR/gateway.yaml:26: listener "e": tls.certificates: at least one certificate is required (or acme)`,
				`DIR/gateway.yaml:27: listener "e": trustedProxies[0]: "10.0.0.0/33" is not an IP address or CIDR`,
				`DIR/gateway.yaml:27: listener "e": trustedProxies[1]: "proxy.internal" is not an IP address or CIDR`,
				`DIR/gateway.yaml:28: listener "e": timeouts.idle: must not be negative`,
				`DIR/gateway.yaml:29: listener "e": limits.maxHeaderCount: must not be negative`,
				`DIR/gateway.yaml:29: listener "e": limits.maxBodyBytes: must be -1 (no limit) or a size in bytes`,
			},
		},
		{
			desc: "match paths must be in normal form",
			yaml: `version: 1
listeners: [{name: web, address: 127.0.0.1:18080}]
routes:
  - name: r
    match:
      - path: {prefix: /a/../admin}
      - path: {exact: /%61dmin}
      - path: {prefix: /bad%zz}
      - path: {prefix: //keep/double}
    backends: [{service: s}]
services: [{name: s, endpoints: [{address: 127.0.0.1:9001}]}]
`,
			want: []string{
				`DIR/gateway.yaml:6: route "r": match[0].path.prefix: "/a/../admin" is not in normal form, so no request could match it; write "/admin"`,
				`DIR/gateway.yaml:7: route "r": match[1].path.exact: "/%61dmin" is not in normal form, so no request could match it; write "/admin"`,
				`DIR/gateway.yaml:8: route "r": match[2].path.prefix: "/bad%zz" is not a valid path: pathnorm: malformed percent-escape`,
			},
		},
		{
			desc: "retry policy",
			yaml: `version: 1
listeners: [{name: web, address: 127.0.0.1:18080}]
routes:
  - name: r
    backends: [{service: s}]
    retry:
      attempts: 11
      on: [5xx, sometimes, 5xx]
      statuses: [200]
      grpcStatuses: [unavailable, "14", bogus]
      backoff: {base: 1s, max: 100ms}
      budget: {percent: 120, minPerSecond: -1}
      bufferBytes: -1
services: [{name: s, endpoints: [{address: 127.0.0.1:9001}]}]
`,
			want: []string{
				`DIR/gateway.yaml:7: route "r": retry.attempts: must be between 1 and 10`,
				`DIR/gateway.yaml:8: route "r": retry.on[1]: unknown value "sometimes"; expected "connect_failure", "refused_stream", "reset", "gateway_error", "5xx", "retriable_status" or "retriable_grpc"`,
				`DIR/gateway.yaml:8: route "r": retry.on[2]: "5xx" is listed twice`,
				`DIR/gateway.yaml:9: route "r": retry.statuses: takes effect only when "on" lists "retriable_status"`,
				`DIR/gateway.yaml:9: route "r": retry.statuses[0]: 200 is not a 4xx or 5xx status`,
				`DIR/gateway.yaml:10: route "r": retry.grpcStatuses: takes effect only when "on" lists "retriable_grpc"`,
				`DIR/gateway.yaml:10: route "r": retry.grpcStatuses[2]: "bogus" is not a gRPC status code name (such as "unavailable") or number 1-16`,
				`DIR/gateway.yaml:11: route "r": retry.backoff.max: 100ms is less than the base (1s)`,
				`DIR/gateway.yaml:12: route "r": retry.budget.percent: must be between 0 and 100`,
				`DIR/gateway.yaml:12: route "r": retry.budget.minPerSecond: must not be negative`,
				`DIR/gateway.yaml:13: route "r": retry.bufferBytes: must be between 0 and 16777216`,
			},
		},
		{
			desc: "mirror on a route that answers itself",
			yaml: `version: 1
listeners: [{name: web, address: 127.0.0.1:18080}]
routes:
  - name: r
    filters:
      - redirect: {scheme: https}
    mirror: {service: s}
services: [{name: s, endpoints: [{address: 127.0.0.1:9001}]}]
`,
			want: []string{
				`DIR/gateway.yaml:7: route "r": mirror: has no effect: routes[0].filters[0] (line 6) answers the request itself`,
			},
		},
		{
			desc: "route listeners, hosts and matches",
			yaml: `version: 1
listeners: [{name: web, address: ":18080"}]
services: [{name: s, endpoints: [{address: "127.0.0.1:18081"}]}]
routes:
  - name: users-api
    listeners: [web, nope, web]
    hosts: [api.example.com, "*.example.org", "API.example.com", "api.example.com:443", "a_b.example", "*", "-x.example", ""]
    match:
      - path: {}
      - path: {exact: /a, prefix: /b}
      - path: {exact: login}
      - path: {prefix: users}
        method: get
      - path: {regex: "(unclosed"}
        headers:
          - {name: "X Bad", value: v}
          - {name: X-Ok}
          - {name: X-Re, regex: "[z-a]"}
          - {value: v}
        query:
          - {value: v}
          - {name: q, value: v, present: true}
    backends: [{service: s}]
`,
			want: []string{
				`DIR/gateway.yaml:6: route "users-api": listeners[1]: listener "nope" is not defined`,
				`DIR/gateway.yaml:6: route "users-api": listeners[2]: listener "web" is listed twice`,
				`DIR/gateway.yaml:7: route "users-api": hosts[2]: host "API.example.com" is listed twice`,
				`DIR/gateway.yaml:7: route "users-api": hosts[3]: host "api.example.com:443" must not include a port`,
				`DIR/gateway.yaml:7: route "users-api": hosts[4]: "a_b.example" is not a host name or a wildcard such as "*.example.org"`,
				`DIR/gateway.yaml:7: route "users-api": hosts[5]: "*" is not a host name or a wildcard such as "*.example.org"`,
				`DIR/gateway.yaml:7: route "users-api": hosts[6]: "-x.example" is not a host name or a wildcard such as "*.example.org"`,
				`DIR/gateway.yaml:7: route "users-api": hosts[7]: "" is not a host name or a wildcard such as "*.example.org"`,
				`DIR/gateway.yaml:9: route "users-api": match[0].path: set exactly one of exact, prefix or regex`,
				`DIR/gateway.yaml:10: route "users-api": match[1].path: set exactly one of exact, prefix or regex, not exact and prefix`,
				`DIR/gateway.yaml:11: route "users-api": match[2].path.exact: "login" must start with "/"`,
				`DIR/gateway.yaml:12: route "users-api": match[3].path.prefix: "users" must start with "/"`,
				`DIR/gateway.yaml:13: route "users-api": match[3].method: "get" is not a method; methods are uppercase letters, such as "GET"`,
				"DIR/gateway.yaml:14: route \"users-api\": match[4].path.regex: invalid regex: missing closing ): `(unclosed`",
				`DIR/gateway.yaml:16: route "users-api": match[4].headers[0].name: "X Bad" is not a valid header name`,
				`DIR/gateway.yaml:17: route "users-api": match[4].headers[1]: set exactly one of value, regex or present`,
				"DIR/gateway.yaml:18: route \"users-api\": match[4].headers[2].regex: invalid regex: invalid character class range: `z-a`",
				`DIR/gateway.yaml:19: route "users-api": match[4].headers[3].name: required`,
				`DIR/gateway.yaml:21: route "users-api": match[4].query[0].name: required`,
				`DIR/gateway.yaml:22: route "users-api": match[4].query[1]: set exactly one of value, regex or present, not value and present`,
			},
		},
		{
			desc: "filters",
			yaml: `version: 1
services: [{name: s, endpoints: [{address: "127.0.0.1:18081"}]}]
routes:
  - name: f
    match: [{path: {prefix: /a}}, {path: {exact: /b}}]
    filters:
      - {}
      - {rewrite: {path: /x}, respond: {}}
      - requestHeaders: {}
      - requestHeaders:
          set: {"X Bad": v, X-Crlf: "a\r\nb"}
          add: {x.trace: "1"}
          remove: ["Bad:"]
      - rewrite: {}
      - rewrite: {path: x, pathPrefix: /y, host: "bad host"}
      - rewrite: {pathPrefix: /}
    backends: [{service: s}]
  - name: answers
    filters:
      - redirect: {scheme: ftp, host: "a b", port: 70000, path: /a, pathPrefix: /b, status: 200}
      - respond: {status: 99, contentType: "text/plain\nX-Injected: 1"}
`,
			want: []string{
				`DIR/gateway.yaml:7: route "f": filters[0]: set exactly one of requestHeaders, responseHeaders, rewrite, redirect, respond or securityHeaders`,
				`DIR/gateway.yaml:8: route "f": filters[1]: set exactly one of requestHeaders, responseHeaders, rewrite, redirect, respond or securityHeaders, not rewrite and respond`,
				`DIR/gateway.yaml:9: route "f": filters[2].requestHeaders: empty; set at least one of set, add or remove`,
				`DIR/gateway.yaml:11: route "f": filters[3].requestHeaders.set["X Bad"]: "X Bad" is not a valid header name`,
				`DIR/gateway.yaml:11: route "f": filters[3].requestHeaders.set.X-Crlf: the value must not contain CR, LF or NUL`,
				`DIR/gateway.yaml:13: route "f": filters[3].requestHeaders.remove[0]: "Bad:" is not a valid header name`,
				`DIR/gateway.yaml:14: route "f": filters[4].rewrite: empty; set path, pathPrefix or host`,
				`DIR/gateway.yaml:15: route "f": filters[5].rewrite: set at most one of path and pathPrefix`,
				`DIR/gateway.yaml:15: route "f": filters[5].rewrite.path: "x" must start with "/"`,
				`DIR/gateway.yaml:15: route "f": filters[5].rewrite.pathPrefix: needs every match of the route to be a path prefix match, and match[1] is not`,
				`DIR/gateway.yaml:15: route "f": filters[5].rewrite.host: "bad host" is not a valid host or host:port`,
				`DIR/gateway.yaml:16: route "f": filters[6].rewrite.pathPrefix: needs every match of the route to be a path prefix match, and match[1] is not`,
				`DIR/gateway.yaml:20: route "answers": filters[0].redirect.scheme: unknown value "ftp"; expected "http" or "https"`,
				`DIR/gateway.yaml:20: route "answers": filters[0].redirect.host: "a b" is not a host name or IP address (set the port with port)`,
				`DIR/gateway.yaml:20: route "answers": filters[0].redirect.port: 70000 is not a port in 1..65535`,
				`DIR/gateway.yaml:20: route "answers": filters[0].redirect: set at most one of path and pathPrefix`,
				`DIR/gateway.yaml:20: route "answers": filters[0].redirect.status: 200 is not a redirect status; expected 301, 302, 303, 307 or 308`,
				`DIR/gateway.yaml:21: route "answers": filters[1].respond.status: 99 is not a status in 200..599`,
				`DIR/gateway.yaml:21: route "answers": filters[1].respond.contentType: must not contain CR, LF or NUL`,
				`DIR/gateway.yaml:21: route "answers": filters[1]: a route answers with at most one redirect or respond filter; routes[1].filters[0] (line 20) already does`,
			},
		},
		{
			desc: "backends",
			yaml: `version: 1
services: [{name: users, endpoints: [{address: "127.0.0.1:18081"}]}]
routes:
  - name: users-api
    backends:
      - service: users
      - service: nope
      - weight: -1
    timeout: -1s
  - name: empty
`,
			want: []string{
				`DIR/gateway.yaml:7: route "users-api": backends[1].service: service "nope" is not defined`,
				`DIR/gateway.yaml:8: route "users-api": backends[2].service: required`,
				`DIR/gateway.yaml:8: route "users-api": backends[2].weight: must not be negative`,
				`DIR/gateway.yaml:9: route "users-api": timeout: must not be negative`,
				`DIR/gateway.yaml:10: route "empty": backends: required unless a redirect or respond filter answers the request`,
			},
		},
		{
			desc: "services",
			yaml: `version: 1
services:
  - name: a
    protocol: http3
  - name: b
    endpoints:
      - address: 127.0.0.1
      - address: "127.0.0.1:0"
      - address: "bad_host:80"
      - {address: "B.internal:80", weight: -1}
      - address: "b.internal:80"
    loadBalancer: {policy: fastest}
  - name: c
    endpoints: [{address: "127.0.0.1:18081"}]
    loadBalancer: {policy: ring_hash}
  - name: d
    endpoints: [{address: "127.0.0.1:18081"}]
    loadBalancer: {hash: {header: x}}
  - name: e
    endpoints: [{address: "127.0.0.1:18081"}]
    loadBalancer: {policy: maglev, hash: {header: "a b", cookie: "c;"}}
  - name: f
    endpoints: [{address: "127.0.0.1:18081"}]
    loadBalancer: {policy: maglev, hash: {}}
    healthCheck:
      http: {path: health, host: "h:99999", expectedStatuses: [200, 600]}
      tcp: {}
      interval: 2s
      unhealthyThreshold: -1
    pool: {maxIdlePerEndpoint: -1, connectTimeout: -1s}
  - name: g
    endpoints: [{address: "127.0.0.1:18081"}]
    healthCheck: {interval: 1s}
`,
			want: []string{
				`DIR/gateway.yaml:3: service "a": endpoints: at least one endpoint is required (or discovery, to take them from the mesh registry)`,
				`DIR/gateway.yaml:4: service "a": protocol: unknown value "http3"; expected "http1", "http2" or "grpc"`,
				`DIR/gateway.yaml:7: service "b": endpoints[0].address: "127.0.0.1" is not a host:port address`,
				`DIR/gateway.yaml:8: service "b": endpoints[1].address: port "0" must be a number in 1..65535`,
				`DIR/gateway.yaml:9: service "b": endpoints[2].address: "bad_host" is not a valid host name or IP address`,
				`DIR/gateway.yaml:10: service "b": endpoints[3].weight: must be at least 1`,
				`DIR/gateway.yaml:11: service "b": endpoints[4].address: "b.internal:80" is already listed as services[1].endpoints[3] (line 10)`,
				`DIR/gateway.yaml:12: service "b": loadBalancer.policy: unknown value "fastest"; expected "round_robin", "least_request", "ring_hash", "maglev" or "random"`,
				`DIR/gateway.yaml:15: service "c": loadBalancer.hash: required for policy "ring_hash"`,
				`DIR/gateway.yaml:18: service "d": loadBalancer.hash: only allowed for policies "ring_hash" and "maglev"`,
				`DIR/gateway.yaml:21: service "e": loadBalancer.hash: set exactly one of header, cookie or sourceIP, not header and cookie`,
				`DIR/gateway.yaml:21: service "e": loadBalancer.hash.header: "a b" is not a valid header name`,
				`DIR/gateway.yaml:21: service "e": loadBalancer.hash.cookie: "c;" is not a valid cookie name`,
				`DIR/gateway.yaml:24: service "f": loadBalancer.hash: set exactly one of header, cookie or sourceIP`,
				`DIR/gateway.yaml:25: service "f": healthCheck: set exactly one of http or tcp, not http and tcp`,
				`DIR/gateway.yaml:26: service "f": healthCheck.http.path: "health" must start with "/"`,
				`DIR/gateway.yaml:26: service "f": healthCheck.http.host: port "99999" must be a number in 1..65535`,
				`DIR/gateway.yaml:26: service "f": healthCheck.http.expectedStatuses[1]: 600 is not a status in 100..599`,
				`DIR/gateway.yaml:28: service "f": healthCheck.interval: 2s must be greater than the timeout (2s)`,
				`DIR/gateway.yaml:29: service "f": healthCheck.unhealthyThreshold: must be at least 1`,
				`DIR/gateway.yaml:30: service "f": pool.maxIdlePerEndpoint: must not be negative`,
				`DIR/gateway.yaml:30: service "f": pool.connectTimeout: must not be negative`,
				`DIR/gateway.yaml:33: service "g": healthCheck: set exactly one of http or tcp`,
				`DIR/gateway.yaml:33: service "g": healthCheck.interval: 1s must be greater than the timeout (2s)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			_, err := LoadBytes(file, []byte(tt.yaml))
			got := strings.ReplaceAll(strings.Join(errorLines(err), "\n"), dir, "DIR")
			if want := strings.Join(tt.want, "\n"); got != want {
				t.Errorf("got:\n\t%s\nwant:\n\t%s", strings.ReplaceAll(got, "\n", "\n\t"), strings.ReplaceAll(want, "\n", "\n\t"))
			}
		})
	}
}

// TestValidateWithoutSource validates a config built in Go: errors carry no file or line, but
// still name their object and path.
func TestValidateWithoutSource(t *testing.T) {
	c := &Config{
		Listeners: []Listener{{Name: "web", Address: "127.0.0.1:18080"}},
		Routes:    []Route{{Name: "r", Backends: []Backend{{Service: "missing"}}}},
	}
	ApplyDefaults(c)
	checkErrors(t, Validate(c), []string{
		`version: missing; add "version: 1"`,
		`route "r": backends[0].service: service "missing" is not defined`,
	})

	c.Version = 2
	c.Routes = nil
	checkErrors(t, Validate(c), []string{`version: unsupported version 2; the only supported version is 1`})

	c.Version = 1
	if err := Validate(c); err != nil {
		t.Errorf("Validate = %v", err)
	}
}

func TestResolvePath(t *testing.T) {
	c := &Config{Source: Source{File: filepath.Join("etc", "meshgate", "gateway.yaml")}}
	abs, _ := filepath.Abs("x.pem")
	for _, tt := range []struct{ in, want string }{
		{"cert.pem", filepath.Join("etc", "meshgate", "cert.pem")},
		{"../tls/cert.pem", filepath.Join("etc", "tls", "cert.pem")},
		{abs, abs},
		{"", ""},
	} {
		if got := c.ResolvePath(tt.in); got != tt.want {
			t.Errorf("ResolvePath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := (&Config{}).ResolvePath("cert.pem"); got != "cert.pem" {
		t.Errorf("without a source file, ResolvePath = %q", got)
	}
}
