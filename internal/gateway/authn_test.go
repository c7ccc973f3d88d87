package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"golang.org/x/crypto/bcrypt"

	"github.com/meshgate/meshgate/internal/testpki"
)

// Signing keys of the JWT tests, generated once per test binary (RSA generation is slow).
var (
	authnRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	authnECKey      = sync.OnceValue(func() *ecdsa.PrivateKey { return authnGenEC() })
	authnFileECKey  = sync.OnceValue(func() *ecdsa.PrivateKey { return authnGenEC() })
	authnStrangerEC = sync.OnceValue(func() *ecdsa.PrivateKey { return authnGenEC() })
	// authnBcrypt is the bcrypt hash of authnPassword, at the lowest cost validation accepts.
	authnBcrypt = sync.OnceValue(func() string {
		h, err := bcrypt.GenerateFromPassword([]byte(authnPassword), 4)
		if err != nil {
			panic(err)
		}
		return string(h)
	})
)

func authnGenEC() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// Credentials of the consumers of authnConfig.
const (
	authnAliceKey = "alice-key-0123456789"
	authnBobKey   = "bob-key-9876543210"
	authnPassword = "correct horse battery staple"
	authnIssuer   = "https://idp.test"
	authnAudience = "meshgate-test"
)

// keyDigest is the form consumers' API keys take in the config: the hex SHA-256 of the key.
func keyDigest(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

// startJWKS serves the public halves of the RSA key (kid "rsa-1") and the EC key (kid "ec-1")
// as a JSON Web Key Set, until the test ends.
func startJWKS(t testing.TB) *httptest.Server {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range []struct {
		kid string
		alg jwa.SignatureAlgorithm
		key any
	}{{"rsa-1", jwa.RS256(), &authnRSAKey().PublicKey}, {"ec-1", jwa.ES256(), &authnECKey().PublicKey}} {
		pub, err := jwk.Import(k.key)
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Set(jwk.KeyIDKey, k.kid); err != nil {
			t.Fatal(err)
		}
		if err := pub.Set(jwk.AlgorithmKey, k.alg); err != nil {
			t.Fatal(err)
		}
		if err := set.AddKey(pub); err != nil {
			t.Fatal(err)
		}
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// writeECPublicKey writes the public half of the key file authenticator's key as a PEM file.
func writeECPublicKey(t testing.TB, dir string) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&authnFileECKey().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "jwt-ec.pem")
	testpki.WritePEM(t, path, "PUBLIC KEY", der)
	return path
}

// jwtClaims are claims that pass authnConfig's JWT authenticators, for subject sub.
func jwtClaims(sub string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": authnIssuer,
		"aud": []string{authnAudience},
		"sub": sub,
		"iat": now.Add(-time.Minute).Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
}

// withClaims returns a copy of m with the given claims changed; a nil value deletes one.
func withClaims(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// signJWT signs claims with key under alg, naming kid in the header when it is not empty.
func signJWT(t testing.TB, alg jwa.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	tok := jwt.New()
	for name, v := range claims {
		switch name {
		case "exp", "iat", "nbf":
			v = time.Unix(v.(int64), 0)
		}
		if err := tok.Set(name, v); err != nil {
			t.Fatalf("claim %s: %v", name, err)
		}
	}
	k, err := jwk.Import(key)
	if err != nil {
		t.Fatal(err)
	}
	if kid != "" {
		if err := k.Set(jwk.KeyIDKey, kid); err != nil {
			t.Fatal(err)
		}
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(alg, k))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// handMadeJWT builds a compact token from a header and claims, with sign computing the signature
// over the signing input (nil: an empty signature). It makes the tokens no library would.
func handMadeJWT(t testing.TB, header, claims map[string]any, sign func(input string) []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(header) + "." + enc(claims)
	var sig []byte
	if sign != nil {
		sig = sign(input)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// authnConfig is the config of the authentication tests: one listener, one route per way of
// authenticating, and an open route, all to the upstream at echo.
func authnConfig(echo, jwksURL, keyFile string) string {
	return configHead + fmt.Sprintf(`listeners:
  - name: edge
    address: "127.0.0.1:0"
    security: {internalHeaders: [X-Internal-Role]}
authenticators:
  - name: keys
    apiKey: {query: api_key}
  - name: basic
    basic: {realm: "test realm"}
  - name: jwt
    jwt:
      jwksURL: %q
      algorithms: [RS256, ES256]
      issuer: %q
      audiences: [%q]
      claimHeaders: {email: X-User-Email, roles: X-User-Roles, note: X-Claim-Note}
  - name: jwtfile
    jwt:
      keyFiles: [%q]
      algorithms: [ES256]
      issuer: %q
consumers:
  - name: alice
    groups: [admins]
    apiKeys: [{sha256: %q, id: alice-1}]
    basic: {username: alice, bcryptHash: %q}
    jwtSubjects: [alice-sub]
  - name: bob
    groups: [ops]
    apiKeys: [{sha256: %q}]
    jwtSubjects: [bob-sub]
routes:
  - name: key
    match: [{path: {prefix: /key}}]
    auth: {authenticators: [keys]}
    backends: [{service: echo}]
  - name: basic
    match: [{path: {prefix: /basic}}]
    auth: {authenticators: [basic]}
    backends: [{service: echo}]
  - name: jwt
    match: [{path: {prefix: /jwt}}]
    auth: {authenticators: [jwt]}
    backends: [{service: echo}]
  - name: jwtfile
    match: [{path: {prefix: /file}}]
    auth: {authenticators: [jwtfile]}
    backends: [{service: echo}]
  - name: order
    match: [{path: {prefix: /order}}]
    auth: {authenticators: [keys, jwt]}
    backends: [{service: echo}]
  - name: keybasic
    match: [{path: {prefix: /keybasic}}]
    auth: {authenticators: [keys, basic]}
    backends: [{service: echo}]
  - name: optional
    match: [{path: {prefix: /optional}}]
    auth: {authenticators: [keys], optional: true}
    backends: [{service: echo}]
  - name: open
    match: [{path: {prefix: /open}}]
    backends: [{service: echo}]
services:
  - name: echo
    endpoints: [{address: %q}]
`, jwksURL, authnIssuer, authnAudience, keyFile, authnIssuer,
		keyDigest(authnAliceKey), authnBcrypt(), keyDigest(authnBobKey), echo)
}

// authnEnv is a running gateway with authnConfig: its listener's address and a client.
type authnEnv struct {
	addr string
	c    *http.Client
}

// startAuthn starts an upstream, a key set server and a gateway running authnConfig.
func startAuthn(t *testing.T) (*authnEnv, func(name string, labels map[string]string) float64) {
	t.Helper()
	up := startUpstream(t, "echo", upstreamOptions{})
	jwks := startJWKS(t)
	gw := startGateway(t, authnConfig(up.Addr, jwks.URL, writeECPublicKey(t, t.TempDir())))
	metric := func(name string, labels map[string]string) float64 {
		v, _ := metricValue(t, gw, name, labels)
		return v
	}
	return &authnEnv{addr: listenerAddr(t, gw, "edge"), c: newClient(t)}, metric
}

// send sends method path to the gateway with the header fields given as name, value pairs.
func (e *authnEnv) send(t *testing.T, method, path string, fields ...string) *result {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+e.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(fields); i += 2 {
		req.Header.Add(fields[i], fields[i+1])
	}
	return do(t, e.c, req)
}

// authnCase is one request of a table-driven authentication test and what must come of it.
type authnCase struct {
	desc   string
	path   string
	fields []string // header fields, as name, value pairs
	status int
	reason string // X-Meshgate-Reason; "" means absent
	// consumer is the X-Meshgate-Consumer the upstream must see ("" means none) when status is
	// 200.
	consumer string
	// challenge, when set, must be contained in the WWW-Authenticate of the response.
	challenge string
	// uri, when set, is the request-target the upstream must have received.
	uri string
	// upHeaders are header values the upstream must have received; an empty value means the
	// field must be absent.
	upHeaders map[string]string
}

// check asserts the outcome of c on r.
func (c *authnCase) check(t *testing.T, r *result) {
	t.Helper()
	if r.Status != c.status || r.reason() != c.reason {
		t.Fatalf("status %d reason %q; want %d %q (body %q)", r.Status, r.reason(), c.status, c.reason, r.Body)
	}
	if c.challenge != "" && !strings.Contains(r.Header.Get("WWW-Authenticate"), c.challenge) {
		t.Errorf("WWW-Authenticate %q; want it to contain %q", r.Header.Get("WWW-Authenticate"), c.challenge)
	}
	if c.status != 200 {
		if r.Echo != nil {
			t.Errorf("a refused request reached the upstream: %+v", r.Echo)
		}
		return
	}
	if r.Echo == nil {
		t.Fatalf("no echo from the upstream: body %q", r.Body)
	}
	if got := r.Echo.Header.Values("X-Meshgate-Consumer"); strings.Join(got, "|") != c.consumer {
		t.Errorf("upstream saw X-Meshgate-Consumer %q; want %q", got, c.consumer)
	}
	if c.uri != "" && r.Echo.URI != c.uri {
		t.Errorf("upstream saw request-target %q; want %q", r.Echo.URI, c.uri)
	}
	for name, want := range c.upHeaders {
		got := strings.Join(r.Echo.Header.Values(name), "|")
		if got != want {
			t.Errorf("upstream saw %s %q; want %q", name, got, want)
		}
	}
}

// TestAuthnAPIKey: an API key in the configured header or query parameter maps to its consumer,
// whose name the upstream receives while the key itself is never forwarded; a wrong key, no key,
// two keys, and a key sent both ways are refused with 401.
func TestAuthnAPIKey(t *testing.T) {
	t.Parallel()
	env, _ := startAuthn(t)
	noKey := map[string]string{"X-Api-Key": ""}
	for _, c := range []authnCase{
		{desc: "valid key in the header", path: "/key/a", fields: []string{"X-API-Key", authnAliceKey},
			status: 200, consumer: "alice", uri: "/key/a", upHeaders: noKey},
		{desc: "another consumer's key", path: "/key/a", fields: []string{"x-api-key", authnBobKey},
			status: 200, consumer: "bob", upHeaders: noKey},
		{desc: "wrong key", path: "/key/a", fields: []string{"X-API-Key", authnAliceKey + "x"},
			status: 401, reason: "bad_credential"},
		{desc: "the key's digest instead of the key", path: "/key/a", fields: []string{"X-API-Key", keyDigest(authnAliceKey)},
			status: 401, reason: "bad_credential"},
		{desc: "empty key", path: "/key/a", fields: []string{"X-API-Key", ""},
			status: 401, reason: "bad_credential"},
		{desc: "no key", path: "/key/a", status: 401, reason: "unauthenticated"},
		{desc: "two key headers", path: "/key/a", fields: []string{"X-API-Key", authnAliceKey, "X-API-Key", authnBobKey},
			status: 401, reason: "bad_credential"},
		{desc: "the same key twice", path: "/key/a", fields: []string{"X-API-Key", authnAliceKey, "X-API-Key", authnAliceKey},
			status: 401, reason: "bad_credential"},
		{desc: "valid key in the query", path: "/key/q?z=9&api_key=" + authnAliceKey + "&a=1",
			status: 200, consumer: "alice", uri: "/key/q?z=9&a=1", upHeaders: noKey},
		{desc: "valid key as the only query parameter", path: "/key/q?api_key=" + authnBobKey,
			status: 200, consumer: "bob", uri: "/key/q"},
		{desc: "wrong key in the query", path: "/key/q?api_key=nope", status: 401, reason: "bad_credential"},
		{desc: "two keys in the query", path: "/key/q?api_key=" + authnAliceKey + "&api_key=" + authnAliceKey,
			status: 401, reason: "bad_credential"},
		{desc: "key in the header and in the query", path: "/key/q?api_key=" + authnBobKey, fields: []string{"X-API-Key", authnAliceKey},
			status: 401, reason: "bad_credential"},
		{desc: "percent-encoded parameter name", path: "/key/q?api%5Fkey=" + authnAliceKey,
			status: 200, consumer: "alice", uri: "/key/q"},
		{desc: "a parameter whose name only ends like the key's", path: "/key/q?xapi_key=" + authnAliceKey,
			status: 401, reason: "unauthenticated"},
	} {
		t.Run(c.desc, func(t *testing.T) {
			c.check(t, env.send(t, "GET", c.path, c.fields...))
		})
	}
}

// basicAuth is the Authorization value of HTTP basic credentials.
func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// TestAuthnBasic: HTTP basic credentials are checked against the consumer's bcrypt hash; every
// refusal is a 401 carrying the realm's challenge, and the Authorization header never reaches the
// upstream.
func TestAuthnBasic(t *testing.T) {
	t.Parallel()
	env, _ := startAuthn(t)
	const challenge = `Basic realm="test realm"`
	noAuth := map[string]string{"Authorization": ""}
	for _, c := range []authnCase{
		{desc: "valid", path: "/basic/x", fields: []string{"Authorization", basicAuth("alice", authnPassword)},
			status: 200, consumer: "alice", upHeaders: noAuth},
		{desc: "scheme in upper case", path: "/basic/x", fields: []string{"Authorization", "BASIC " + strings.TrimPrefix(basicAuth("alice", authnPassword), "Basic ")},
			status: 200, consumer: "alice", upHeaders: noAuth},
		{desc: "wrong password", path: "/basic/x", fields: []string{"Authorization", basicAuth("alice", authnPassword+"!")},
			status: 401, reason: "bad_credential", challenge: challenge},
		{desc: "unknown user", path: "/basic/x", fields: []string{"Authorization", basicAuth("mallory", authnPassword)},
			status: 401, reason: "bad_credential", challenge: challenge},
		{desc: "not base64", path: "/basic/x", fields: []string{"Authorization", "Basic !!!notbase64"},
			status: 401, reason: "bad_credential", challenge: challenge},
		{desc: "no colon", path: "/basic/x", fields: []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice"))},
			status: 401, reason: "bad_credential", challenge: challenge},
		{desc: "empty user name", path: "/basic/x", fields: []string{"Authorization", basicAuth("", authnPassword)},
			status: 401, reason: "bad_credential", challenge: challenge},
		{desc: "two Authorization headers", path: "/basic/x",
			fields: []string{"Authorization", basicAuth("alice", authnPassword), "Authorization", basicAuth("alice", authnPassword)},
			status: 401, reason: "bad_credential", challenge: challenge},
		{desc: "no credentials", path: "/basic/x", status: 401, reason: "unauthenticated", challenge: challenge},
		{desc: "a bearer token instead", path: "/basic/x", fields: []string{"Authorization", "Bearer abc"},
			status: 401, reason: "unauthenticated", challenge: challenge},
	} {
		t.Run(c.desc, func(t *testing.T) {
			c.check(t, env.send(t, "GET", c.path, c.fields...))
		})
	}
}

// TestAuthnJWT: a bearer token verified against the key set maps its subject to a consumer and
// copies the configured claims to upstream headers; expired tokens, other issuers and
// audiences, "alg":"none", HS256 signed with the public key, unknown keys and garbage are
// refused with 401 "bad_credential" and a Bearer challenge. A claim value with CR or LF is not
// copied, and the request still succeeds. A second authenticator reads its key from a PEM file.
func TestAuthnJWT(t *testing.T) {
	t.Parallel()
	env, _ := startAuthn(t)
	rsaKey, ecKey := authnRSAKey(), authnECKey()
	good := jwtClaims("alice-sub")
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	pubPEM := func() []byte {
		der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	hs256 := func(secret []byte) func(string) []byte {
		return func(input string) []byte {
			m := hmac.New(sha256.New, secret)
			m.Write([]byte(input))
			return m.Sum(nil)
		}
	}
	const challenge = "Bearer"
	richToken := signJWT(t, jwa.RS256(), rsaKey, "rsa-1",
		withClaims(good, "email", "alice@example.test", "roles", []string{"reader", "writer"}))
	for _, c := range []authnCase{
		{desc: "RS256 with claim headers", path: "/jwt/x", fields: bearer(richToken), status: 200, consumer: "alice",
			upHeaders: map[string]string{"X-User-Email": "alice@example.test", "X-User-Roles": "reader,writer",
				"Authorization": "Bearer " + richToken}},
		{desc: "ES256", path: "/jwt/x", fields: bearer(signJWT(t, jwa.ES256(), ecKey, "ec-1", jwtClaims("bob-sub"))),
			status: 200, consumer: "bob", upHeaders: map[string]string{"X-User-Email": ""}},
		{desc: "a subject that maps to no consumer", path: "/jwt/x", fields: bearer(signJWT(t, jwa.RS256(), rsaKey, "rsa-1", jwtClaims("carol-sub"))),
			status: 200, consumer: ""},
		{desc: "lower-case scheme", path: "/jwt/x", fields: []string{"Authorization", "bearer " + signJWT(t, jwa.RS256(), rsaKey, "rsa-1", good)},
			status: 200, consumer: "alice"},
		{desc: "claim with CR LF", path: "/jwt/x",
			fields: bearer(signJWT(t, jwa.RS256(), rsaKey, "rsa-1", withClaims(good, "note", "x\r\nX-Injected: 1", "email", "ok@example.test"))),
			status: 200, consumer: "alice",
			upHeaders: map[string]string{"X-Claim-Note": "", "X-Injected": "", "X-User-Email": "ok@example.test"}},
		{desc: "claim with a bare LF", path: "/jwt/x",
			fields: bearer(signJWT(t, jwa.RS256(), rsaKey, "rsa-1", withClaims(good, "note", "x\nX-Injected: 1"))),
			status: 200, consumer: "alice", upHeaders: map[string]string{"X-Claim-Note": "", "X-Injected": ""}},
		{desc: "expired", path: "/jwt/x",
			fields: bearer(signJWT(t, jwa.RS256(), rsaKey, "rsa-1", withClaims(good, "exp", time.Now().Add(-time.Hour).Unix()))),
			status: 401, reason: "bad_credential", challenge: challenge},
		{desc: "not yet valid", path: "/jwt/x",
			fields: bearer(signJWT(t, jwa.RS256(), rsaKey, "rsa-1", withClaims(good, "nbf", time.Now().Add(time.Hour).Unix()))),
			status: 401, reason: "bad_credential", challenge: challenge},
		{desc: "no exp", path: "/jwt/x", fields: bearer(signJWT(t, jwa.RS256(), rsaKey, "rsa-1", withClaims(good, "exp", nil))),
			status: 401, reason: "bad_credential", challenge: challenge},
		{desc: "wrong issuer", path: "/jwt/x", fields: bearer(signJWT(t, jwa.RS256(), rsaKey, "rsa-1", withClaims(good, "iss", "https://evil.test"))),
			status: 401, reason: "bad_credential", challenge: challenge},
		{desc: "wrong audience", path: "/jwt/x", fields: bearer(signJWT(t, jwa.RS256(), rsaKey, "rsa-1", withClaims(good, "aud", []string{"other"}))),
			status: 401, reason: "bad_credential", challenge: challenge},
		{desc: "alg none", path: "/jwt/x", fields: bearer(handMadeJWT(t, map[string]any{"alg": "none", "typ": "JWT"}, good, nil)),
			status: 401, reason: "bad_credential", challenge: challenge},
		{desc: "alg none with a kid", path: "/jwt/x", fields: bearer(handMadeJWT(t, map[string]any{"alg": "none", "kid": "rsa-1"}, good, nil)),
			status: 401, reason: "bad_credential", challenge: challenge},
		{desc: "HS256 signed with the RSA public key", path: "/jwt/x",
			fields: bearer(handMadeJWT(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, good, hs256(pubPEM))),
			status: 401, reason: "bad_credential", challenge: challenge},
		{desc: "signed by an unknown key", path: "/jwt/x", fields: bearer(signJWT(t, jwa.ES256(), authnStrangerEC(), "ec-1", good)),
			status: 401, reason: "bad_credential", challenge: challenge},
		{desc: "signed by an unknown key without kid", path: "/jwt/x", fields: bearer(signJWT(t, jwa.ES256(), authnStrangerEC(), "", good)),
			status: 401, reason: "bad_credential", challenge: challenge},
		{desc: "tampered claims", path: "/jwt/x", fields: bearer(func() string {
			parts := strings.Split(signJWT(t, jwa.RS256(), rsaKey, "rsa-1", jwtClaims("bob-sub")), ".")
			parts[1] = strings.Split(signJWT(t, jwa.RS256(), rsaKey, "rsa-1", good), ".")[1]
			return strings.Join(parts, ".")
		}()), status: 401, reason: "bad_credential", challenge: challenge},
		{desc: "garbage", path: "/jwt/x", fields: bearer("not.a.token"), status: 401, reason: "bad_credential", challenge: challenge},
		{desc: "no token", path: "/jwt/x", status: 401, reason: "unauthenticated", challenge: challenge},
		{desc: "key file: valid", path: "/file/x", fields: bearer(signJWT(t, jwa.ES256(), authnFileECKey(), "", good)),
			status: 200, consumer: "alice"},
		{desc: "key file: a key-set key is not accepted", path: "/file/x", fields: bearer(signJWT(t, jwa.ES256(), ecKey, "ec-1", good)),
			status: 401, reason: "bad_credential", challenge: challenge},
		{desc: "key file: algorithm not allowed", path: "/file/x", fields: bearer(signJWT(t, jwa.RS256(), rsaKey, "", good)),
			status: 401, reason: "bad_credential", challenge: challenge},
	} {
		t.Run(c.desc, func(t *testing.T) {
			c.check(t, env.send(t, "GET", c.path, c.fields...))
		})
	}
}

// TestAuthnOrderAndOptional: a route's authenticators are tried in order and the first whose
// credential the request carries decides (so a wrong API key is refused even beside a valid JWT);
// an optional route admits requests without any credential anonymously but still refuses a wrong
// one. meshgate_auth_total names the authenticator that decided.
func TestAuthnOrderAndOptional(t *testing.T) {
	t.Parallel()
	env, metric := startAuthn(t)
	tok := signJWT(t, jwa.RS256(), authnRSAKey(), "rsa-1", jwtClaims("bob-sub"))
	for _, c := range []struct {
		authnCase
		authenticator, result string // the meshgate_auth_total labels that must move by one
	}{
		{authnCase{desc: "only a JWT", path: "/order/x", fields: []string{"Authorization", "Bearer " + tok}, status: 200, consumer: "bob"},
			"jwt", "authenticated"},
		{authnCase{desc: "only a key", path: "/order/x", fields: []string{"X-API-Key", authnAliceKey}, status: 200, consumer: "alice",
			upHeaders: map[string]string{"X-Api-Key": ""}}, "keys", "authenticated"},
		{authnCase{desc: "a key and a JWT: the key decides", path: "/order/x",
			fields: []string{"X-API-Key", authnAliceKey, "Authorization", "Bearer " + tok}, status: 200, consumer: "alice"},
			"keys", "authenticated"},
		{authnCase{desc: "a wrong key beside a valid JWT", path: "/order/x",
			fields: []string{"X-API-Key", "wrong", "Authorization", "Bearer " + tok}, status: 401, reason: "bad_credential"},
			"keys", "refused"},
		{authnCase{desc: "a valid key beside a bad JWT", path: "/order/x",
			fields: []string{"X-API-Key", authnAliceKey, "Authorization", "Bearer bad"}, status: 200, consumer: "alice"},
			"keys", "authenticated"},
		{authnCase{desc: "a key and basic credentials: the key decides, the password stays here", path: "/keybasic/x",
			fields: []string{"X-API-Key", authnBobKey, "Authorization", basicAuth("alice", authnPassword)}, status: 200, consumer: "bob",
			upHeaders: map[string]string{"Authorization": "", "X-Api-Key": ""}}, "keys", "authenticated"},
		{authnCase{desc: "a key in the query and basic credentials: the key decides, the password stays here", path: "/keybasic/x?api_key=" + authnBobKey,
			fields: []string{"Authorization", basicAuth("alice", authnPassword)}, status: 200, consumer: "bob", uri: "/keybasic/x",
			upHeaders: map[string]string{"Authorization": ""}}, "keys", "authenticated"},
		{authnCase{desc: "nothing", path: "/order/x", status: 401, reason: "unauthenticated", challenge: "Bearer"}, "", "missing"},
		{authnCase{desc: "optional: nothing", path: "/optional/x", status: 200, consumer: ""}, "", "anonymous"},
		{authnCase{desc: "optional: a valid key", path: "/optional/x", fields: []string{"X-API-Key", authnBobKey}, status: 200, consumer: "bob"},
			"keys", "authenticated"},
		{authnCase{desc: "optional: a wrong key", path: "/optional/x", fields: []string{"X-API-Key", "wrong"}, status: 401, reason: "bad_credential"},
			"keys", "refused"},
		{authnCase{desc: "optional: a credential of a kind the route does not take", path: "/optional/x",
			fields: []string{"Authorization", "Bearer " + tok}, status: 200, consumer: "", upHeaders: map[string]string{"Authorization": "Bearer " + tok}},
			"", "anonymous"},
	} {
		t.Run(c.desc, func(t *testing.T) {
			route := strings.Split(c.path, "/")[1]
			labels := map[string]string{"route": route, "authenticator": c.authenticator, "result": c.result}
			before := metric("meshgate_auth_total", labels)
			c.check(t, env.send(t, "GET", c.path, c.fields...))
			if got := metric("meshgate_auth_total", labels); got != before+1 {
				t.Errorf("meshgate_auth_total%v went from %v to %v; want one more", labels, before, got)
			}
		})
	}
}

// TestAuthnInternalHeaders: the consumer header, JWT claim headers and the listener's internal
// headers are the gateway's to set: values a client sends for them (in any case, several times)
// never reach the upstream, on authenticated, optional and unauthenticated routes alike.
func TestAuthnInternalHeaders(t *testing.T) {
	t.Parallel()
	env, _ := startAuthn(t)
	spoofed := []string{
		"X-Meshgate-Consumer", "mallory", "x-meshgate-consumer", "mallory2",
		"X-User-Email", "root@example.test", "X-User-Roles", "admin",
		"X-Internal-Role", "admin", "x-internal-role", "admin2",
	}
	tok := signJWT(t, jwa.RS256(), authnRSAKey(), "rsa-1", jwtClaims("bob-sub")) // no email, no roles
	for _, c := range []authnCase{
		{desc: "api key route", path: "/key/x", fields: append([]string{"X-API-Key", authnAliceKey}, spoofed...), status: 200, consumer: "alice"},
		{desc: "jwt route, claims absent from the token", path: "/jwt/x", fields: append([]string{"Authorization", "Bearer " + tok}, spoofed...),
			status: 200, consumer: "bob"},
		{desc: "jwt route, token of a subject without consumer", path: "/jwt/x",
			fields: append([]string{"Authorization", "Bearer " + signJWT(t, jwa.RS256(), authnRSAKey(), "rsa-1", jwtClaims("nobody"))}, spoofed...),
			status: 200, consumer: ""},
		{desc: "optional route, anonymous", path: "/optional/x", fields: spoofed, status: 200, consumer: ""},
		{desc: "route without authentication", path: "/open/x", fields: spoofed, status: 200, consumer: ""},
	} {
		c.upHeaders = map[string]string{"X-User-Email": "", "X-User-Roles": "", "X-Internal-Role": ""}
		t.Run(c.desc, func(t *testing.T) {
			r := env.send(t, "GET", c.path, c.fields...)
			c.check(t, r)
			for name, vs := range r.Echo.Header {
				for _, v := range vs {
					if strings.HasPrefix(v, "mallory") || strings.HasPrefix(v, "admin") || v == "root@example.test" {
						t.Errorf("upstream saw the client's %s: %q", name, v)
					}
				}
			}
		})
	}
}

// TestAuthnClientCert: over an https listener with an optional client CA, a verified
// certificate maps to a consumer by subject or URI SAN; a verified certificate that maps to no
// consumer is refused with 401; without a certificate the next authenticator (an API key)
// decides, and without either the request gets 401 "unauthenticated".
func TestAuthnClientCert(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pki := testpki.New(t, dir, "api.example.test")
	srv := pki.Certs["api.example.test"]
	billing := pki.Client("billing", "Example")
	orders := pki.Client("orders-svc", "Example", "spiffe://example.test/orders")
	stranger := pki.Client("stranger", "Example")
	up := startUpstream(t, "echo", upstreamOptions{})
	gw := startGateway(t, configHead+fmt.Sprintf(`listeners:
  - name: secure
    address: "127.0.0.1:0"
    protocol: https
    tls:
      certificates: [{cert: %q, key: %q}]
      clientCA: %q
authenticators:
  - name: cert
    clientCert: {}
  - name: keys
    apiKey: {}
consumers:
  - name: billing
    certificate: {subjects: ["CN=billing,O=Example"]}
  - name: orders
    certificate: {uris: ["spiffe://example.test/orders"]}
  - name: scripts
    apiKeys: [{sha256: %q}]
routes:
  - name: cert
    auth: {authenticators: [cert, keys]}
    backends: [{service: echo}]
services:
  - name: echo
    endpoints: [{address: %q}]
`, srv.Cert, srv.Key, pki.CAFile, keyDigest(authnAliceKey), up.Addr))
	addr := listenerAddr(t, gw, "secure")
	client := func(certs ...tls.Certificate) *http.Client {
		tr := &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pki.Pool, ServerName: "api.example.test", Certificates: certs},
			DialContext:     (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 15 * time.Second}
	}
	for _, c := range []struct {
		authnCase
		certs []tls.Certificate
	}{
		{authnCase{desc: "mapped by subject", status: 200, consumer: "billing"}, []tls.Certificate{billing.Pair}},
		{authnCase{desc: "mapped by URI SAN", status: 200, consumer: "orders"}, []tls.Certificate{orders.Pair}},
		{authnCase{desc: "mapped by subject, with a key of another consumer", fields: []string{"X-API-Key", authnAliceKey},
			status: 200, consumer: "billing"}, []tls.Certificate{billing.Pair}},
		{authnCase{desc: "unmapped certificate", status: 401, reason: "bad_credential"}, []tls.Certificate{stranger.Pair}},
		{authnCase{desc: "unmapped certificate with a valid key", fields: []string{"X-API-Key", authnAliceKey},
			status: 401, reason: "bad_credential"}, []tls.Certificate{stranger.Pair}},
		{authnCase{desc: "no certificate, a key", fields: []string{"X-API-Key", authnAliceKey}, status: 200, consumer: "scripts"}, nil},
		{authnCase{desc: "no certificate, a spoofed consumer header", fields: []string{"X-Meshgate-Consumer", "billing"},
			status: 401, reason: "unauthenticated"}, nil},
		{authnCase{desc: "no certificate, nothing", status: 401, reason: "unauthenticated"}, nil},
	} {
		t.Run(c.desc, func(t *testing.T) {
			req, err := http.NewRequest("GET", "https://"+addr+"/x", nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i+1 < len(c.fields); i += 2 {
				req.Header.Add(c.fields[i], c.fields[i+1])
			}
			c.check(t, do(t, client(c.certs...), req))
		})
	}
}

// TestAuthnMetrics: meshgate_auth_total counts authentication outcomes by route, authenticator
// and result, and meshgate_consumer_requests_total counts the requests of each consumer by service and route
// and status, refused ones included once the consumer is known.
func TestAuthnMetrics(t *testing.T) {
	t.Parallel()
	env, metric := startAuthn(t)
	for range 3 {
		if r := env.send(t, "GET", "/key/x", "X-API-Key", authnAliceKey); r.Status != 200 {
			t.Fatalf("status %d", r.Status)
		}
	}
	if r := env.send(t, "GET", "/key/x", "X-API-Key", "wrong"); r.Status != 401 {
		t.Fatalf("status %d", r.Status)
	}
	if r := env.send(t, "GET", "/key/x"); r.Status != 401 {
		t.Fatalf("status %d", r.Status)
	}
	if r := env.send(t, "GET", "/optional/x"); r.Status != 200 {
		t.Fatalf("status %d", r.Status)
	}
	if r := env.send(t, "GET", "/basic/x", "Authorization", basicAuth("alice", authnPassword)); r.Status != 200 {
		t.Fatalf("status %d", r.Status)
	}
	for _, m := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"meshgate_auth_total", map[string]string{"route": "key", "authenticator": "keys", "result": "authenticated"}, 3},
		{"meshgate_auth_total", map[string]string{"route": "key", "authenticator": "keys", "result": "refused"}, 1},
		{"meshgate_auth_total", map[string]string{"route": "key", "authenticator": "", "result": "missing"}, 1},
		{"meshgate_auth_total", map[string]string{"route": "optional", "authenticator": "", "result": "anonymous"}, 1},
		{"meshgate_auth_total", map[string]string{"route": "basic", "authenticator": "basic", "result": "authenticated"}, 1},
		{"meshgate_consumer_requests_total", map[string]string{"consumer": "alice", "service": "echo", "route": "key", "code": "200"}, 3},
		{"meshgate_consumer_requests_total", map[string]string{"consumer": "alice", "service": "echo", "route": "basic", "code": "200"}, 1},
	} {
		if got := metric(m.name, m.labels); got != m.want {
			t.Errorf("%s%v = %v; want %v", m.name, m.labels, got, m.want)
		}
	}
}
