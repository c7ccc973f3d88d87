package jwtauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Keys are generated once per test binary: RSA generation is the slowest part.
var (
	rsaKey      = sync.OnceValue(func() *rsa.PrivateKey { return genRSA(2048) })
	rsaKey2     = sync.OnceValue(func() *rsa.PrivateKey { return genRSA(2048) })
	attackerRSA = sync.OnceValue(func() *rsa.PrivateKey { return genRSA(2048) })
	ecKey       = sync.OnceValue(func() *ecdsa.PrivateKey { return genEC(elliptic.P256()) })
	ecKey384    = sync.OnceValue(func() *ecdsa.PrivateKey { return genEC(elliptic.P384()) })
	attackerEC  = sync.OnceValue(func() *ecdsa.PrivateKey { return genEC(elliptic.P256()) })
	edKey       = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func genRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func genEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// t0 is the fixed "now" of the tests.
var t0 = time.Unix(1_800_000_000, 0)

// fakeClock is a manually advanced clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// ---- hand-made tokens ----

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64JSON(v any) string {
	j, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b64(j)
}

// signingInput is base64url(header) "." base64url(claims).
func signingInput(hdr, claims map[string]any) string {
	return b64JSON(hdr) + "." + b64JSON(claims)
}

func digest(h crypto.Hash, input string) []byte {
	hh := h.New()
	hh.Write([]byte(input))
	return hh.Sum(nil)
}

var hashFor = map[string]crypto.Hash{
	"RS256": crypto.SHA256, "RS384": crypto.SHA384, "RS512": crypto.SHA512,
	"PS256": crypto.SHA256, "PS384": crypto.SHA384, "PS512": crypto.SHA512,
	"ES256": crypto.SHA256, "ES384": crypto.SHA384, "ES512": crypto.SHA512,
	"HS256": crypto.SHA256, "HS384": crypto.SHA384, "HS512": crypto.SHA512,
}

// rawSign produces the JWS signature bytes of input with the standard library only.
func rawSign(alg string, key any, input string) []byte {
	var (
		sig []byte
		err error
	)
	switch k := key.(type) {
	case *rsa.PrivateKey:
		h := hashFor[alg]
		if strings.HasPrefix(alg, "PS") {
			sig, err = rsa.SignPSS(rand.Reader, k, h, digest(h, input), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, k, h, digest(h, input))
		}
	case *ecdsa.PrivateKey:
		r, s, e := ecdsa.Sign(rand.Reader, k, digest(hashFor[alg], input))
		err = e
		size := (k.Curve.Params().BitSize + 7) / 8
		sig = make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, []byte(input))
	case []byte:
		m := hmac.New(hashFor[alg].New, k)
		m.Write([]byte(input))
		sig = m.Sum(nil)
	default:
		panic("rawSign: unsupported key")
	}
	if err != nil {
		panic(err)
	}
	return sig
}

// mint builds a compact token by hand: header and claims are JSON-encoded and base64url
// encoded, then signed with key under alg.
func mint(alg string, key any, hdr, claims map[string]any) string {
	h := map[string]any{"alg": alg, "typ": "JWT"}
	for k, v := range hdr {
		if v == nil {
			delete(h, k)
			continue
		}
		h[k] = v
	}
	input := signingInput(h, claims)
	return input + "." + b64(rawSign(alg, key, input))
}

const (
	testIssuer   = "https://idp.example"
	testAudience = "meshgate"
)

// goodClaims are claims that pass the default test options at t0.
func goodClaims() map[string]any {
	return map[string]any{
		"iss": testIssuer,
		"aud": testAudience,
		"sub": "user-1",
		"iat": t0.Unix() - 60,
		"exp": t0.Unix() + 3600,
	}
}

// with returns a copy of m with the given changes; a nil value deletes the entry.
func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
		} else {
			out[k] = kv[i+1]
		}
	}
	return out
}

// ---- key material on disk and over HTTP ----

func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemPublic(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// jwkSpec describes one JWK for jwkJSON.
type jwkSpec struct {
	kid   string
	alg   string // omitted when empty
	use   string // omitted when empty
	key   any    // public or private key, or []byte for "oct"
	extra map[string]any
}

// jwkJSON renders a public JWK by hand (RFC 7517/7518 member names).
func jwkJSON(s jwkSpec) map[string]any {
	m := map[string]any{}
	switch k := s.key.(type) {
	case *rsa.PrivateKey:
		return jwkJSON(jwkSpec{kid: s.kid, alg: s.alg, use: s.use, key: &k.PublicKey, extra: s.extra})
	case *ecdsa.PrivateKey:
		return jwkJSON(jwkSpec{kid: s.kid, alg: s.alg, use: s.use, key: &k.PublicKey, extra: s.extra})
	case ed25519.PrivateKey:
		return jwkJSON(jwkSpec{kid: s.kid, alg: s.alg, use: s.use, key: k.Public(), extra: s.extra})
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = b64(k.N.Bytes())
		m["e"] = b64(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		ek, err := k.ECDH()
		if err != nil {
			panic(err)
		}
		pt := ek.Bytes()[1:] // uncompressed point without the 0x04 prefix
		m["kty"] = "EC"
		m["crv"] = k.Curve.Params().Name
		m["x"] = b64(pt[:len(pt)/2])
		m["y"] = b64(pt[len(pt)/2:])
	case ed25519.PublicKey:
		m["kty"] = "OKP"
		m["crv"] = "Ed25519"
		m["x"] = b64(k)
	case []byte:
		m["kty"] = "oct"
		m["k"] = b64(k)
	default:
		panic("jwkJSON: unsupported key")
	}
	if s.kid != "" {
		m["kid"] = s.kid
	}
	if s.alg != "" {
		m["alg"] = s.alg
	}
	if s.use != "" {
		m["use"] = s.use
	}
	for k, v := range s.extra {
		m[k] = v
	}
	return m
}

func jwksJSON(specs ...jwkSpec) []byte {
	keys := make([]any, 0, len(specs))
	for _, s := range specs {
		keys = append(keys, jwkJSON(s))
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err)
	}
	return b
}

// jwksServer is a key set endpoint whose answer the test controls.
type jwksServer struct {
	*httptest.Server
	mu       sync.Mutex
	status   int
	body     []byte
	requests atomic.Int64
}

func newJWKSServer(t testing.TB, specs ...jwkSpec) *jwksServer {
	t.Helper()
	s := &jwksServer{status: http.StatusOK, body: jwksJSON(specs...)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		status, body := s.status, s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(specs ...jwkSpec) { s.respond(http.StatusOK, jwksJSON(specs...)) }

func (s *jwksServer) respond(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

// countingServer records requests and serves body; used as an attacker's server.
func countingServer(t testing.TB, body []byte) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// ---- verifiers ----

// baseOptions are the options most tests start from.
func baseOptions(clock *fakeClock) Options {
	return Options{
		Algorithms: []string{"RS256", "PS256", "ES256", "ES384", "EdDSA"},
		Issuer:     testIssuer,
		Audiences:  []string{testAudience},
		Now:        clock.Now,
	}
}

func newVerifierT(t testing.TB, opts Options) *Verifier {
	t.Helper()
	v, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(v.Close)
	return v
}

// startedVerifier creates a verifier for a JWKS URL and starts it.
func startedVerifier(t testing.TB, opts Options) *Verifier {
	t.Helper()
	v := newVerifierT(t, opts)
	if err := v.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return v
}

// rsaFileVerifier verifies RS256/PS256 with rsaKey from a PEM file (no kid).
func rsaFileVerifier(t testing.TB, clock *fakeClock) *Verifier {
	t.Helper()
	opts := baseOptions(clock)
	opts.Algorithms = []string{"RS256"}
	opts.KeyFiles = []string{writeFile(t, "rsa.pem", pemPublic(t, &rsaKey().PublicKey))}
	return newVerifierT(t, opts)
}

func mustVerify(t testing.TB, v *Verifier, token string) Claims {
	t.Helper()
	c, err := v.Verify(token)
	if err != nil {
		t.Fatalf("Verify refused a good token: %v", err)
	}
	return c
}

// wantRefused asserts that Verify refuses token with target, returns no claims, and that
// the error text holds no part of the token.
func wantRefused(t testing.TB, v *Verifier, token string, target error) {
	t.Helper()
	c, err := v.Verify(token)
	if err == nil {
		t.Fatalf("Verify accepted a token that must be refused (want %v)", target)
	}
	if !errors.Is(err, target) {
		t.Fatalf("Verify error = %v, want %v", err, target)
	}
	if c != nil {
		t.Fatalf("Verify returned claims with an error")
	}
	assertNoTokenInError(t, err, token)
}

func assertNoTokenInError(t testing.TB, err error, token string) {
	t.Helper()
	msg := err.Error()
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 && strings.Contains(msg, part) {
			t.Fatalf("error text contains part of the token: %q", msg)
		}
	}
}
