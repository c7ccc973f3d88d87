package config

import (
	"strings"
	"testing"
)

// securityErrors returns the errors of the edge-security validators on doc: authenticators,
// plans, consumers, and each route's security policies.
func securityErrors(t *testing.T, doc string) []string {
	return policyErrors(t, doc, func(v *validator, c *Config) {
		v.listeners = map[string]bool{}
		v.security()
		for i := range c.Routes {
			v.routeSecurity(v.object(pathIndex("routes", i), c.Routes[i].Name), &c.Routes[i])
		}
		for i := range c.Listeners {
			v.listenerSecurity(v.object(pathIndex("listeners", i), c.Listeners[i].Name), &c.Listeners[i])
		}
		v.adminSecurity(v.object("admin", ""))
	})
}

func TestValidateSecurity(t *testing.T) {
	const digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	const bcryptHash = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	tests := []struct {
		desc string
		yaml string
		want []string
	}{
		{
			desc: "valid",
			yaml: `version: 1
authenticators:
  - {name: keys, apiKey: {}}
  - {name: tokens, jwt: {jwksURL: "https://idp.example/jwks", algorithms: [RS256, ES256], claimHeaders: {sub: X-User}}}
  - {name: login, basic: {}}
  - {name: ext, extAuthz: {url: "http://127.0.0.1:9000/check", upstreamHeaders: [X-User-Id]}}
plans:
  - {name: gold, rateLimit: {rate: 10}, quota: {limit: 1000, period: day, redis: "127.0.0.1:6379"}}
consumers:
  - {name: acme, groups: [partners], plan: gold, apiKeys: [{sha256: "` + digest + `"}], basic: {username: acme, bcryptHash: "` + bcryptHash + `"}, jwtSubjects: [acme-sub]}
routes:
  - name: api
    auth: {authenticators: [keys, tokens]}
    authz:
      rules:
        - {name: partners, action: allow, groups: [partners], methods: [GET], paths: [{prefix: /orders}], sourceCIDRs: [10.0.0.0/8, "::1"]}
        - {name: no-admin, action: deny, paths: [{prefix: /admin}], cel: "request.method == 'DELETE'"}
    cors: {allowOrigins: ["https://app.example.com", "https://*.example.org"], allowCredentials: true}
    ipAccess: {deny: [192.0.2.0/24]}
`,
		},
		{
			desc: "authenticators",
			yaml: `version: 1
authenticators:
  - {name: none}
  - {name: two, apiKey: {}, basic: {}}
  - {name: tokens, jwt: {algorithms: [none, HS256, RS256], leeway: 1h, refreshInterval: 1h, maxKeyAge: 30m}}
  - {name: ext, extAuthz: {url: "ftp://x", timeout: 1m}}
  - {name: hmac-from-url, jwt: {jwksURL: "https://user:pw@idp.example/jwks", algorithms: [HS256]}}
`,
			want: []string{
				`gateway.yaml:3: authenticator "none": set exactly one of apiKey, jwt, basic, clientCert or extAuthz`,
				`gateway.yaml:4: authenticator "two": set exactly one of apiKey, jwt, basic, clientCert or extAuthz, not apiKey and basic`,
				`gateway.yaml:5: authenticator "tokens": jwt: set jwksURL, keyFiles or both`,
				`gateway.yaml:5: authenticator "tokens": jwt.algorithms[0]: "none" is not an accepted algorithm; use "ES256", "ES384", "ES512", "Ed25519", "EdDSA", "HS256", "HS384", "HS512", "PS256", "PS384", "PS512", "RS256", "RS384" or "RS512"`,
				`gateway.yaml:5: authenticator "tokens": jwt.algorithms: HMAC (HS*) and public-key algorithms cannot be mixed: a public key could then be used as an HMAC secret`,
				`gateway.yaml:5: authenticator "tokens": jwt.maxKeyAge: 30m0s must be longer than refreshInterval (1h0m0s), or fetched keys would expire before the next refresh`,
				`gateway.yaml:5: authenticator "tokens": jwt.leeway: must be between 0s and 10m0s`,
				`gateway.yaml:6: authenticator "ext": extAuthz.url: "ftp://x" must start with http:// or https://`,
				`gateway.yaml:6: authenticator "ext": extAuthz.timeout: 1m0s is more than the maximum of 30s`,
				`gateway.yaml:7: authenticator "hmac-from-url": jwt.jwksURL: "https://user:pw@idp.example/jwks" must not carry credentials; they would show in logs`,
				`gateway.yaml:7: authenticator "hmac-from-url": jwt.jwksURL: HMAC secrets are never taken from a key set URL; put them in keyFiles as JWKs of kty "oct"`,
			},
		},
		{
			desc: "consumers and plans",
			yaml: `version: 1
plans:
  - {name: p, rateLimit: {rate: 1, key: {clientIP: true}}, quota: {limit: 0, period: week, redis: "nohost"}}
consumers:
  - {name: "bad name", plan: missing, groups: ["a b"], apiKeys: [{sha256: "my-secret-key"}]}
  - {name: a, apiKeys: [{sha256: "` + digest + `"}], basic: {username: "x:y", bcryptHash: "plain"}}
  - {name: b, apiKeys: [{sha256: "` + strings.ToUpper(digest) + `"}], jwtSubjects: [s], certificate: {}}
  - {name: c, jwtSubjects: [s]}
`,
			want: []string{
				`gateway.yaml:3: plan "p": rateLimit.key: not allowed: a plan's limit always counts each consumer separately`,
				`gateway.yaml:3: plan "p": quota.limit: must be at least 1`,
				`gateway.yaml:3: plan "p": quota.period: unknown value "week"; expected "day" or "month"`,
				`gateway.yaml:3: plan "p": quota.redis: "nohost" is not a host:port address`,
				`gateway.yaml:5: consumer "bad name": name: "bad name" may hold only letters, digits, '.', '_' and '-'`,
				`gateway.yaml:5: consumer "bad name": groups[0]: "a b" may hold only letters, digits, '.', '_' and '-'`,
				`gateway.yaml:5: consumer "bad name": plan: plan "missing" is not defined`,
				`gateway.yaml:5: consumer "bad name": apiKeys[0].sha256: must be 64 hex digits: the SHA-256 digest of the key, not the key`,
				`gateway.yaml:6: consumer "a": basic.username: required, without ':'`,
				`gateway.yaml:6: consumer "a": basic.bcryptHash: must be a bcrypt hash ($2a$, $2b$ or $2y$, cost 4 to 31)`,
				`gateway.yaml:7: consumer "b": apiKeys[0]: API key digest "` + digest + `" already belongs to consumers[1].apiKeys[0] (line 6)`,
				`gateway.yaml:7: consumer "b": certificate: set at least one of subjects, dnsNames and uris`,
				`gateway.yaml:8: consumer "c": jwtSubjects[0]: JWT subject "s" already belongs to consumers[2].jwtSubjects[0] (line 7)`,
			},
		},
		{
			desc: "route policies",
			yaml: `version: 1
authenticators:
  - {name: certs, clientCert: {}}
listeners:
  - {name: web, address: "127.0.0.1:8080"}
routes:
  - name: r
    auth: {authenticators: [missing, certs, certs]}
    authz:
      default: maybe
      rules:
        - {name: empty, action: allow}
        - {name: empty, action: permit, consumers: [nobody], methods: [get], paths: [{prefix: admin}], sourceCIDRs: [10.0.0.0/33], claims: [{name: scope}]}
    cors: {allowOrigins: ["*", "app.example.com"], allowCredentials: true}
    ipAccess: {}
    maxBodyBytes: -1
`,
			want: []string{
				`gateway.yaml:8: route "r": auth.authenticators[0]: authenticator "missing" is not defined`,
				`gateway.yaml:8: route "r": auth.authenticators[1]: authenticator "certs" needs client certificates, but listener "web" has no tls.clientCA`,
				`gateway.yaml:8: route "r": auth.authenticators[2]: authenticator "certs" is listed twice`,
				`gateway.yaml:10: route "r": authz.default: unknown value "maybe"; expected "allow" or "deny"`,
				`gateway.yaml:12: route "r": authz.rules[0]: set at least one condition; a rule for everything is the policy's default`,
				`gateway.yaml:13: route "r": authz.rules[1].name: "empty" is already the name of routes[0].authz.rules[0] (line 12)`,
				`gateway.yaml:13: route "r": authz.rules[1].action: unknown value "permit"; expected "allow" or "deny"`,
				`gateway.yaml:13: route "r": authz.rules[1].consumers[0]: consumer "nobody" is not defined`,
				`gateway.yaml:13: route "r": authz.rules[1].claims[0].values: at least one value is required`,
				`gateway.yaml:13: route "r": authz.rules[1].methods[0]: "get" is not an upper-case HTTP method`,
				`gateway.yaml:13: route "r": authz.rules[1].paths[0].prefix: "admin" must start with "/"`,
				`gateway.yaml:13: route "r": authz.rules[1].sourceCIDRs[0]: "10.0.0.0/33" is not an IP address or CIDR`,
				`gateway.yaml:14: route "r": cors.allowOrigins[0]: "*" cannot be used with allowCredentials; list the origins`,
				`gateway.yaml:14: route "r": cors.allowOrigins[1]: "app.example.com" is not an origin such as "https://app.example.com" or "https://*.example.com"`,
				`gateway.yaml:15: route "r": ipAccess: set allow, deny or both`,
				`gateway.yaml:16: route "r": maxBodyBytes: must not be negative`,
			},
		},
		{
			desc: "admin beyond loopback",
			yaml: `version: 1
admin: {address: "0.0.0.0:9901", tokenEnv: "1BAD"}
`,
			want: []string{
				`gateway.yaml:2: admin: tokenEnv: "1BAD" is not a valid environment variable name`,
			},
		},
		{
			desc: "admin beyond loopback without protection",
			yaml: `version: 1
admin: {address: "0.0.0.0:9901"}
`,
			want: []string{
				`gateway.yaml:2: admin: address: "0.0.0.0:9901" is reachable beyond this machine: set tokenEnv or tls with clientCA and clientAuth "require"`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			got := securityErrors(t, tc.yaml)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(tc.want, "\n\t"))
			}
		})
	}
}
