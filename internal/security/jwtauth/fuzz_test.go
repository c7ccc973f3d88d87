package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
)

// signedByRealKey is an oracle independent of the verifier and its library: it reports
// whether the token's third segment is a valid RS256 signature by rsaKey or ES256
// signature by ecKey over its first two segments.
func signedByRealKey(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&rsaKey().PublicKey, crypto.SHA256, h[:], sig) == nil {
		return true
	}
	if len(sig) == 64 {
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if ecdsa.Verify(&ecKey().PublicKey, h[:], r, s) {
			return true
		}
	}
	return false
}

// FuzzVerify feeds arbitrary strings to Verify. It must never panic, every refusal
// must carry one of the sentinels without quoting the token, and every accepted token
// must be signed by a real key and unexpired.
func FuzzVerify(f *testing.F) {
	clock := newClock()
	opts := baseOptions(clock)
	opts.Algorithms = []string{"RS256", "ES256"}
	opts.KeyFiles = []string{writeFile(f, "keys.json", jwksJSON(
		jwkSpec{kid: "r", key: rsaKey()},
		jwkSpec{kid: "e", key: ecKey()},
	))}
	v := newVerifierT(f, opts)

	claims := goodClaims()
	valid := []string{
		mint("RS256", rsaKey(), map[string]any{"kid": "r"}, claims),
		mint("ES256", ecKey(), map[string]any{"kid": "e"}, claims),
		mint("RS256", rsaKey(), nil, with(claims, "roles", []string{"a", "b"}, "n", 1.5)),
		mint("ES256", ecKey(), map[string]any{"kid": "e", "jku": "http://127.0.0.1:1/"}, claims),
	}
	for _, tok := range valid {
		if _, err := v.Verify(tok); err != nil {
			f.Fatalf("seed refused: %v", err)
		}
		f.Add(tok)
	}
	pemBytes := pemPublic(f, &rsaKey().PublicKey)
	realSig := valid[0][strings.LastIndexByte(valid[0], '.')+1:]
	noneInput := signingInput(map[string]any{"alg": "none"}, claims)
	esInput := signingInput(map[string]any{"alg": "ES256", "kid": "e"}, claims)
	for _, s := range []string{
		noneInput + ".",
		noneInput + "." + realSig,
		mint("HS256", pemBytes, map[string]any{"kid": "r"}, claims),
		esInput + "." + b64(make([]byte, 64)),
		mint("RS256", attackerRSA(), map[string]any{"kid": "r", "jwk": jwkJSON(jwkSpec{key: attackerRSA()})}, claims),
		mint("RS256", attackerRSA(), map[string]any{"kid": "../../etc/passwd"}, claims),
		mint("RS256", rsaKey(), map[string]any{"kid": "r", "crit": []string{"x"}, "x": 1}, claims),
		mint("RS256", rsaKey(), map[string]any{"kid": "r"}, with(claims, "exp", t0.Unix()-1)),
		signingInput(map[string]any{"alg": "RS256", "alg ": "none"}, claims) + "." + realSig,
		`{"alg":"RS256"}.e30.`,
		"", ".", "..", "a.b.c", "eyJ.eyJ.", strings.Repeat("A", 9000),
	} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(token)
		if err != nil {
			if c != nil {
				t.Fatal("claims returned with an error")
			}
			if ReasonCode(err) == "invalid_token" {
				t.Fatalf("error without a sentinel: %v", err)
			}
			assertNoTokenInError(t, err, token)
			return
		}
		if !signedByRealKey(token) {
			t.Fatalf("accepted a token not signed by a real key: %q", token)
		}
		if c == nil {
			t.Fatal("accepted without claims")
		}
		if exp, ok := c.Time("exp"); !ok || !exp.After(clock.Now()) {
			t.Fatalf("accepted a token without a future exp: %v", c["exp"])
		}
	})
}
