package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// TestEdgeSecurityEndToEnd drives the real binary with curl through the edge-security chain: an
// API key (stored as a digest) and a JWT (verified with a key file) map callers to consumers;
// authorization rules allow by group and deny /admin to all but admins; a CORS preflight is
// answered without credentials; the upstream sees the consumer and a claim header, never the
// key; the access log names the consumer and the deciding rule, and never the key.
func TestEdgeSecurityEndToEnd(t *testing.T) {
	t.Parallel()
	requireTool(t, "curl")
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "consumer="+r.Header.Get("X-Meshgate-Consumer")+" tenant="+r.Header.Get("X-Tenant")+
			" key="+r.Header.Get("X-Api-Key")+" path="+r.URL.Path)
	}))
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "jwt.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		t.Fatal(err)
	}
	const apiKey = "k-4f9c2e7a1b3d5f60"
	digest := sha256.Sum256([]byte(apiKey))
	admin, public := freeAddr(t), freeAddr(t)
	m := startGateway(t, admin, fill(`
version: 1
admin: {address: "{{ADMIN}}"}
accessLog: {path: stdout}
listeners:
  - name: public
    address: "{{PUBLIC}}"
    security: {defaultDeny: true}
authenticators:
  - name: keys
    apiKey: {header: X-Api-Key}
  - name: tokens
    jwt:
      keyFiles: ["{{KEYFILE}}"]
      algorithms: [ES256]
      issuer: https://idp.example.test
      audiences: [api]
      claimHeaders: {tenant: X-Tenant}
consumers:
  - name: billing
    groups: [partners]
    apiKeys: [{sha256: "{{DIGEST}}"}]
  - name: ops
    groups: [admins]
    jwtSubjects: [ops-user]
routes:
  - name: api
    auth: {authenticators: [keys, tokens]}
    cors: {allowOrigins: ["https://app.example.test"], allowHeaders: [X-Api-Key]}
    authz:
      rules:
        - {name: admin-only, action: deny, paths: [{prefix: /admin}], cel: "!('admins' in consumer.groups)"}
        - {name: known-groups, action: allow, groups: [partners, admins]}
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: "{{UP}}"}]
`, "ADMIN", admin, "PUBLIC", public, "UP", up, "KEYFILE", keyFile, "DIGEST", hex.EncodeToString(digest[:])))
	tok, err := jwt.NewBuilder().Issuer("https://idp.example.test").Audience([]string{"api"}).Subject("ops-user").
		Expiration(time.Now().Add(time.Hour)).Claim("tenant", "t-42").Build()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), key))
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + public
	cases := []struct {
		desc   string
		args   []string
		status int
		reason string
		body   string
	}{
		{"API key", []string{"-H", "X-Api-Key: " + apiKey, base + "/orders"}, 200, "", "consumer=billing tenant= key= path=/orders"},
		{"wrong API key", []string{"-H", "X-Api-Key: nope", base + "/orders"}, 401, "bad_credential", ""},
		{"no credential", []string{base + "/orders"}, 401, "unauthenticated", ""},
		{"partner on /admin", []string{"-H", "X-Api-Key: " + apiKey, base + "/admin/users"}, 403, "authz_denied", ""},
		{"partner on /admin via dot segments", []string{"--path-as-is", "-H", "X-Api-Key: " + apiKey, base + "/x/../admin/users"}, 403, "authz_denied", ""},
		{"admin by JWT", []string{"-H", "Authorization: Bearer " + string(signed), base + "/admin/users"}, 200, "", "consumer=ops tenant=t-42 key= path=/admin/users"},
		{"spoofed consumer header", []string{"-H", "X-Meshgate-Consumer: ops", "-H", "X-Api-Key: " + apiKey, base + "/admin"}, 403, "authz_denied", ""},
		{"CORS preflight without credentials", []string{"-X", "OPTIONS", "-H", "Origin: https://app.example.test",
			"-H", "Access-Control-Request-Method: GET", "-H", "Access-Control-Request-Headers: x-api-key", base + "/orders"}, 204, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			res := runCurl(t, tc.args...)
			if res.Status != tc.status {
				t.Fatalf("status %d, want %d; body %q", res.Status, tc.status, res.Body)
			}
			if got := res.Header.Get("X-Meshgate-Reason"); tc.reason != "" && got != tc.reason {
				t.Errorf("reason %q, want %q", got, tc.reason)
			}
			if tc.body != "" && res.Body != tc.body {
				t.Errorf("upstream saw %q, want %q", res.Body, tc.body)
			}
		})
	}
	if !pollUntil(5*time.Second, func() bool {
		out := m.stdout.String()
		return strings.Contains(out, `"consumer":"billing"`) && strings.Contains(out, `"authz":"admin-only"`)
	}) {
		t.Errorf("the access log does not name the consumer and the deciding rule:\n%s", tail(m.stdout.String(), 4096))
	}
	if strings.Contains(m.stdout.String()+m.stderr.String(), apiKey) || strings.Contains(m.stdout.String()+m.stderr.String(), string(signed)) {
		t.Fatal("a credential appears in meshgate's output")
	}
}
