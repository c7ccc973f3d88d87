package jwtauth

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"slices"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// TestKeyWithoutAlgFitsOnlyItsKeyType: a JWKS key without "alg" is usable only with the
// allowlisted algorithms its key type (and curve) supports: RSA → RS*/PS*, P-256 →
// ES256, P-384 → ES384, Ed25519 → EdDSA. The token's header never widens that.
func TestKeyWithoutAlgFitsOnlyItsKeyType(t *testing.T) {
	clock := newClock()
	srv := newJWKSServer(t,
		jwkSpec{kid: "rsa", key: rsaKey()},
		jwkSpec{kid: "p256", key: ecKey()},
		jwkSpec{kid: "p384", key: ecKey384()},
		jwkSpec{kid: "ed", key: edKey()},
	)
	opts := jwksOptions(clock, srv.URL)
	opts.Algorithms = []string{"RS256", "PS256", "ES256", "ES384", "EdDSA"}
	v := startedVerifier(t, opts)

	ok := []struct{ alg, kid string }{
		{"RS256", "rsa"}, {"PS256", "rsa"}, {"ES256", "p256"}, {"ES384", "p384"}, {"EdDSA", "ed"},
	}
	signer := map[string]any{"rsa": rsaKey(), "p256": ecKey(), "p384": ecKey384(), "ed": edKey()}
	for _, c := range ok {
		mustVerify(t, v, mint(c.alg, signer[c.kid], map[string]any{"kid": c.kid}, goodClaims()))
	}

	// Each token below is correctly signed for its alg, by a key of the type that alg
	// needs, but names a kid whose key is of another type or curve.
	mismatched := []struct {
		alg, kid string
		key      any
	}{
		{"ES256", "rsa", ecKey()},
		{"EdDSA", "rsa", edKey()},
		{"RS256", "p256", rsaKey()},
		{"ES384", "p256", ecKey384()},
		{"EdDSA", "p256", edKey()},
		{"ES256", "p384", ecKey()},
		{"RS256", "ed", rsaKey()},
		{"ES256", "ed", ecKey()},
	}
	for _, c := range mismatched {
		t.Run(c.alg+" with "+c.kid, func(t *testing.T) {
			wantRefused(t, v, mint(c.alg, c.key, map[string]any{"kid": c.kid}, goodClaims()), ErrAlgorithm)
		})
	}
	// Allowed by the key type but not by the allowlist.
	wantRefused(t, v, mint("RS512", rsaKey(), map[string]any{"kid": "rsa"}, goodClaims()), ErrAlgorithm)
}

// TestKeyMembersRestrictUse: a key's "alg" pins it to that algorithm, and keys whose
// "use" or "key_ops" exclude verification are ignored.
func TestKeyMembersRestrictUse(t *testing.T) {
	clock := newClock()
	srv := newJWKSServer(t,
		jwkSpec{kid: "pinned", alg: "RS256", key: rsaKey()},
		jwkSpec{kid: "enc", use: "enc", key: rsaKey2()},
		jwkSpec{kid: "ops", key: ecKey(), extra: map[string]any{"key_ops": []string{"encrypt"}}},
		jwkSpec{kid: "verify-ops", key: ecKey384(), extra: map[string]any{"key_ops": []string{"verify"}}},
		jwkSpec{kid: "sig", use: "sig", key: edKey()},
	)
	opts := jwksOptions(clock, srv.URL)
	opts.Algorithms = []string{"RS256", "PS256", "ES256", "ES384", "EdDSA"}
	v := startedVerifier(t, opts)

	mustVerify(t, v, mint("RS256", rsaKey(), map[string]any{"kid": "pinned"}, goodClaims()))
	wantRefused(t, v, mint("PS256", rsaKey(), map[string]any{"kid": "pinned"}, goodClaims()), ErrAlgorithm)
	wantRefused(t, v, mint("RS256", rsaKey2(), map[string]any{"kid": "enc"}, goodClaims()), ErrUnknownKey)
	clock.Advance(DefaultMinRefetchInterval)
	wantRefused(t, v, mint("ES256", ecKey(), map[string]any{"kid": "ops"}, goodClaims()), ErrUnknownKey)
	mustVerify(t, v, mint("ES384", ecKey384(), map[string]any{"kid": "verify-ops"}, goodClaims()))
	mustVerify(t, v, mint("EdDSA", edKey(), map[string]any{"kid": "sig"}, goodClaims()))
}

// TestKeyFileFormats: PEM public keys, private keys and certificates, single JWKs, JWK
// sets and "oct" secrets are loaded; unusable files make New fail.
func TestKeyFileFormats(t *testing.T) {
	clock := newClock()
	ecPKCS8, err := x509.MarshalPKCS8PrivateKey(ecKey())
	if err != nil {
		t.Fatal(err)
	}
	certDER := selfSignedCert(t, rsaKey2())
	secret := []byte(strings.Repeat("k", 48))
	single, _ := json.Marshal(jwkJSON(jwkSpec{kid: "one", key: edKey()}))

	type file struct{ name, body string }
	load := func(t *testing.T, algs []string, files ...file) (*Verifier, error) {
		opts := baseOptions(clock)
		opts.Algorithms = algs
		for _, f := range files {
			opts.KeyFiles = append(opts.KeyFiles, writeFile(t, f.name, []byte(f.body)))
		}
		v, err := New(opts)
		if err == nil {
			t.Cleanup(v.Close)
		}
		return v, err
	}
	asym := []string{"RS256", "ES256", "EdDSA"}

	t.Run("PEM bundle", func(t *testing.T) {
		bundle := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey().PublicKey)})) +
			string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecPKCS8})) +
			string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})) +
			string(pemPublic(t, edKey().Public()))
		v, err := load(t, asym, file{"bundle.pem", bundle})
		if err != nil {
			t.Fatal(err)
		}
		mustVerify(t, v, mint("RS256", rsaKey(), nil, goodClaims()))
		mustVerify(t, v, mint("ES256", ecKey(), nil, goodClaims()))
		mustVerify(t, v, mint("RS256", rsaKey2(), nil, goodClaims()))
		mustVerify(t, v, mint("EdDSA", edKey(), map[string]any{"kid": "any"}, goodClaims()))
		wantRefused(t, v, mint("RS256", attackerRSA(), nil, goodClaims()), ErrSignature)
	})
	t.Run("JWK and JWK set", func(t *testing.T) {
		v, err := load(t, asym,
			file{"one.json", string(single)},
			file{"set.json", string(jwksJSON(jwkSpec{kid: "r", key: rsaKey()}, jwkSpec{kid: "e", key: ecKey()}))})
		if err != nil {
			t.Fatal(err)
		}
		mustVerify(t, v, mint("EdDSA", edKey(), map[string]any{"kid": "one"}, goodClaims()))
		mustVerify(t, v, mint("RS256", rsaKey(), map[string]any{"kid": "r"}, goodClaims()))
		mustVerify(t, v, mint("ES256", ecKey(), map[string]any{"kid": "e"}, goodClaims()))
		wantRefused(t, v, mint("ES256", ecKey(), map[string]any{"kid": "zzz"}, goodClaims()), ErrUnknownKey)
	})
	t.Run("oct secret", func(t *testing.T) {
		v, err := load(t, []string{"HS256", "HS384", "HS512"},
			file{"hmac.json", string(jwksJSON(jwkSpec{kid: "h", key: secret}))})
		if err != nil {
			t.Fatal(err)
		}
		mustVerify(t, v, mint("HS256", secret, map[string]any{"kid": "h"}, goodClaims()))
		mustVerify(t, v, mint("HS384", secret, map[string]any{"kid": "h"}, goodClaims()))
		// A 48-byte secret is too short for HS512.
		wantRefused(t, v, mint("HS512", secret, map[string]any{"kid": "h"}, goodClaims()), ErrAlgorithm)
		wantRefused(t, v, mint("HS256", []byte(strings.Repeat("x", 48)), map[string]any{"kid": "h"}, goodClaims()), ErrSignature)
	})

	bad := []struct {
		name  string
		algs  []string
		files []file
	}{
		{"short HMAC secret", []string{"HS256"}, []file{{"s.json", string(jwksJSON(jwkSpec{key: []byte("short")}))}}},
		{"garbage", asym, []file{{"g.pem", "not a key"}}},
		{"broken PEM", asym, []file{{"b.pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}}},
		{"key type not allowed", []string{"ES256"}, []file{{"r.pem", string(pemPublic(t, &rsaKey().PublicKey))}}},
		{"curve not allowed", []string{"ES256"}, []file{{"e.pem", string(pemPublic(t, &ecKey384().PublicKey))}}},
		{"weak RSA key", []string{"RS256"}, []file{{"w.pem", string(pemPublic(t, &genRSA(1024).PublicKey))}}},
		{"enc-only key", asym, []file{{"enc.json", string(jwksJSON(jwkSpec{use: "enc", key: ecKey()}))}}},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			if _, err := load(t, c.algs, c.files...); err == nil {
				t.Fatal("New accepted an unusable key file")
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		opts := baseOptions(clock)
		opts.KeyFiles = []string{t.TempDir() + "/missing.pem"}
		if _, err := New(opts); err == nil {
			t.Fatal("New accepted a missing key file")
		}
	})
}

// TestAlgorithmsForKey checks the key type to algorithm table directly.
func TestAlgorithmsForKey(t *testing.T) {
	allow := map[string]jwa.SignatureAlgorithm{}
	for name := range supportedAlgorithms {
		a, _ := jwa.LookupSignatureAlgorithm(name)
		allow[name] = a
	}
	imp := func(raw any) jwk.Key {
		k, err := jwk.Import(raw)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	got := func(k jwk.Key, fromJWKS bool) []string {
		vk, err := newVerificationKey(k, allow, fromJWKS)
		if err != nil {
			return nil
		}
		var out []string
		for _, name := range []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"} {
			if vk.allows(name) {
				out = append(out, name)
			}
		}
		return out
	}
	check := func(name string, k jwk.Key, fromJWKS bool, want string) {
		t.Helper()
		if g := strings.Join(got(k, fromJWKS), ","); g != want {
			t.Errorf("%s: algorithms %q, want %q", name, g, want)
		}
	}
	check("RSA", imp(&rsaKey().PublicKey), true, "RS256,RS384,RS512,PS256,PS384,PS512")
	check("RSA private", imp(rsaKey()), true, "RS256,RS384,RS512,PS256,PS384,PS512")
	check("P-256", imp(&ecKey().PublicKey), true, "ES256")
	check("P-384", imp(&ecKey384().PublicKey), true, "ES384")
	check("Ed25519", imp(edKey().Public()), true, "EdDSA,Ed25519")
	check("oct 32 from file", imp(make([]byte, 32)), false, "HS256")
	check("oct 64 from file", imp(make([]byte, 64)), false, "HS256,HS384,HS512")
	check("oct from JWKS", imp(make([]byte, 64)), true, "")
	check("oct 16", imp(make([]byte, 16)), false, "")

	pinned := imp(&rsaKey().PublicKey)
	_ = pinned.Set(jwk.AlgorithmKey, jwa.PS384())
	check("RSA pinned PS384", pinned, true, "PS384")
	wrong := imp(&ecKey().PublicKey)
	_ = wrong.Set(jwk.AlgorithmKey, jwa.RS256())
	check("EC pinned to RS256", wrong, true, "")

	if algorithmsForKey(&rsa.PublicKey{}) != nil {
		t.Error("empty RSA key got algorithms")
	}
}

// TestEd25519AlgorithmNames: an Ed25519 key verifies under both "EdDSA" and the fully
// specified "Ed25519", each only when allowlisted.
func TestEd25519AlgorithmNames(t *testing.T) {
	keyFile := writeFile(t, "ed.pem", pemPublic(t, edKey().Public()))
	for _, algs := range [][]string{{"EdDSA"}, {"Ed25519"}, {"EdDSA", "Ed25519"}} {
		opts := baseOptions(newClock())
		opts.Algorithms = algs
		opts.KeyFiles = []string{keyFile}
		v := newVerifierT(t, opts)
		for _, alg := range []string{"EdDSA", "Ed25519"} {
			token := mint(alg, edKey(), nil, goodClaims())
			if slices.Contains(algs, alg) {
				mustVerify(t, v, token)
			} else {
				wantRefused(t, v, token, ErrAlgorithm)
			}
		}
	}
}
