package jwtauth

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// TestAlgNoneRefused: unsigned tokens ("alg":"none" in any spelling, or no alg at all)
// are refused whether or not they carry a signature segment.
func TestAlgNoneRefused(t *testing.T) {
	v := rsaFileVerifier(t, newClock())
	claims := goodClaims()
	good := mint("RS256", rsaKey(), nil, claims)
	mustVerify(t, v, good)
	realSig := good[strings.LastIndexByte(good, '.')+1:]

	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		input := signingInput(map[string]any{"alg": alg, "typ": "JWT"}, claims)
		t.Run(alg+"/empty signature", func(t *testing.T) { wantRefused(t, v, input+".", ErrAlgorithm) })
		t.Run(alg+"/with signature", func(t *testing.T) { wantRefused(t, v, input+"."+realSig, ErrAlgorithm) })
		t.Run(alg+"/garbage signature", func(t *testing.T) { wantRefused(t, v, input+".c2lnbmF0dXJl", ErrAlgorithm) })
	}
	t.Run("no alg", func(t *testing.T) {
		wantRefused(t, v, signingInput(map[string]any{"typ": "JWT"}, claims)+"."+realSig, ErrAlgorithm)
	})
	t.Run("empty alg", func(t *testing.T) {
		wantRefused(t, v, signingInput(map[string]any{"alg": ""}, claims)+".", ErrAlgorithm)
	})
	t.Run("alg not a string", func(t *testing.T) {
		wantRefused(t, v, signingInput(map[string]any{"alg": nil}, claims)+".", ErrMalformed)
	})
	t.Run("no signature segment", func(t *testing.T) {
		wantRefused(t, v, signingInput(map[string]any{"alg": "none"}, claims), ErrMalformed)
	})
	t.Run("New refuses none", func(t *testing.T) {
		for _, algs := range [][]string{{"none"}, {"RS256", "none"}} {
			opts := baseOptions(newClock())
			opts.Algorithms = algs
			opts.KeyFiles = []string{writeFile(t, "k.pem", pemPublic(t, &rsaKey().PublicKey))}
			if _, err := New(opts); err == nil {
				t.Fatalf("New accepted Algorithms %v", algs)
			}
		}
	})
}

// TestHMACWithPublicKeyAsSecretRefused: the classic RS256→HS256 confusion. The attacker
// signs HS256 with the server's public key bytes as the HMAC secret. With an RS256
// allowlist the token is refused; and configurations that could enable the attack are
// refused by New.
func TestHMACWithPublicKeyAsSecretRefused(t *testing.T) {
	clock := newClock()
	pub := &rsaKey().PublicKey
	pemBytes := pemPublic(t, pub)
	pkix, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	jwkBytes, _ := json.Marshal(jwkJSON(jwkSpec{key: pub}))
	secrets := map[string][]byte{
		"PEM":         pemBytes,
		"PEM trimmed": []byte(strings.TrimSpace(string(pemBytes))),
		"PKIX DER":    pkix,
		"PKCS1 DER":   x509.MarshalPKCS1PublicKey(pub),
		"JWK JSON":    jwkBytes,
		"modulus":     pub.N.Bytes(),
	}

	fileV := rsaFileVerifier(t, clock)
	srv := newJWKSServer(t, jwkSpec{kid: "rsa-1", key: rsaKey()}) // no "alg": only the key type decides
	opts := baseOptions(clock)
	opts.Algorithms = []string{"RS256"}
	opts.JWKSURL = srv.URL
	jwksV := startedVerifier(t, opts)

	for name, secret := range secrets {
		for _, alg := range []string{"HS256", "HS384", "HS512"} {
			for _, kid := range []any{nil, "rsa-1"} {
				token := mint(alg, secret, map[string]any{"kid": kid}, goodClaims())
				t.Run(name+"/"+alg+"/file", func(t *testing.T) { wantRefused(t, fileV, token, ErrAlgorithm) })
				t.Run(name+"/"+alg+"/jwks", func(t *testing.T) { wantRefused(t, jwksV, token, ErrAlgorithm) })
			}
		}
	}
	// The same claims signed properly are accepted, so the refusals above are about the
	// algorithm and nothing else.
	mustVerify(t, fileV, mint("RS256", rsaKey(), nil, goodClaims()))
	mustVerify(t, jwksV, mint("RS256", rsaKey(), map[string]any{"kid": "rsa-1"}, goodClaims()))

	t.Run("New refuses HS mixed with RS", func(t *testing.T) {
		o := baseOptions(clock)
		o.Algorithms = []string{"RS256", "HS256"}
		o.KeyFiles = []string{writeFile(t, "k.pem", pemBytes)}
		if _, err := New(o); err == nil {
			t.Fatal("New accepted HS256 together with RS256")
		}
	})
	t.Run("PEM key is never an HMAC secret", func(t *testing.T) {
		o := baseOptions(clock)
		o.Algorithms = []string{"HS256"}
		o.KeyFiles = []string{writeFile(t, "k.pem", pemBytes)}
		if _, err := New(o); err == nil {
			t.Fatal("New accepted an RSA PEM file as the key for HS256")
		}
	})
	t.Run("New refuses HS with a JWKS URL", func(t *testing.T) {
		o := baseOptions(clock)
		o.Algorithms = []string{"HS256"}
		o.JWKSURL = srv.URL
		if _, err := New(o); err == nil {
			t.Fatal("New accepted HS256 with a JWKS URL")
		}
	})
}

// TestKidPathTraversalNeverReadsFiles: kid values that look like paths are only map
// keys. No file is read after New, and the token is refused as an unknown key.
func TestKidPathTraversalNeverReadsFiles(t *testing.T) {
	clock := newClock()
	var reads []string
	readFile := func(p string) ([]byte, error) {
		reads = append(reads, p)
		return jwksJSON(jwkSpec{kid: "main", key: rsaKey()}), nil
	}
	opts := baseOptions(clock)
	opts.Algorithms = []string{"RS256"}
	opts.KeyFiles = []string{"keys.json"}
	v, err := newVerifier(opts, readFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	if len(reads) != 1 {
		t.Fatalf("New read %d files, want 1", len(reads))
	}
	mustVerify(t, v, mint("RS256", rsaKey(), map[string]any{"kid": "main"}, goodClaims()))

	kids := []string{
		"../../etc/passwd", "/dev/null", "/etc/passwd", "../../../../../../dev/zero",
		"file:///etc/passwd", `..\..\windows\win.ini`, "keys.json", "./keys.json",
		"main/../main", "main\x00", "/proc/self/environ",
	}
	for _, kid := range kids {
		// Signed with the real key: the signature is fine, only the kid is hostile.
		wantRefused(t, v, mint("RS256", rsaKey(), map[string]any{"kid": kid}, goodClaims()), ErrUnknownKey)
		// And signed with an attacker key, as a real attack would be.
		wantRefused(t, v, mint("RS256", attackerRSA(), map[string]any{"kid": kid}, goodClaims()), ErrUnknownKey)
	}
	if len(reads) != 1 {
		t.Fatalf("Verify read files: %q", reads[1:])
	}
}

// TestEmbeddedKeyHeadersIgnored: "jwk", "x5c", "jku" and "x5u" headers never supply or
// locate a key. A token signed by an attacker key that it embeds or points to is
// refused, and the attacker's URLs receive no request.
func TestEmbeddedKeyHeadersIgnored(t *testing.T) {
	clock := newClock()
	srv := newJWKSServer(t, jwkSpec{kid: "k1", key: rsaKey()})
	opts := baseOptions(clock)
	opts.JWKSURL = srv.URL
	v := startedVerifier(t, opts)

	atk := attackerRSA()
	attackerJWK := jwkJSON(jwkSpec{kid: "attacker", alg: "RS256", key: atk})
	certDER := selfSignedCert(t, atk)

	t.Run("jwk header", func(t *testing.T) {
		hdr := map[string]any{"jwk": attackerJWK}
		wantRefused(t, v, mint("RS256", atk, with(hdr, "kid", "attacker"), goodClaims()), ErrUnknownKey)
		wantRefused(t, v, mint("RS256", atk, with(hdr, "kid", "k1"), goodClaims()), ErrSignature)
		wantRefused(t, v, mint("RS256", atk, hdr, goodClaims()), ErrSignature)
	})
	t.Run("x5c header", func(t *testing.T) {
		hdr := map[string]any{"x5c": []string{base64.StdEncoding.EncodeToString(certDER)}}
		wantRefused(t, v, mint("RS256", atk, with(hdr, "kid", "attacker"), goodClaims()), ErrUnknownKey)
		wantRefused(t, v, mint("RS256", atk, with(hdr, "kid", "k1"), goodClaims()), ErrSignature)
		wantRefused(t, v, mint("RS256", atk, hdr, goodClaims()), ErrSignature)
	})
	t.Run("jku and x5u headers", func(t *testing.T) {
		jku, jkuHits := countingServer(t, jwksJSON(jwkSpec{kid: "attacker", alg: "RS256", key: atk}))
		x5u, x5uHits := countingServer(t, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}))
		for _, hdr := range []map[string]any{
			{"jku": jku.URL, "kid": "attacker"},
			{"jku": jku.URL, "kid": "k1"},
			{"jku": jku.URL},
			{"x5u": x5u.URL, "kid": "attacker"},
			{"x5u": x5u.URL, "kid": "k1"},
			{"x5u": x5u.URL},
		} {
			_, err := v.Verify(mint("RS256", atk, hdr, goodClaims()))
			if err == nil {
				t.Fatalf("token with header %v accepted", hdr)
			}
		}
		clock.Advance(time.Minute) // past the unknown-kid rate limit: a refetch may happen, only from our URL
		wantRefused(t, v, mint("RS256", atk, map[string]any{"jku": jku.URL, "kid": "attacker2"}, goodClaims()), ErrUnknownKey)
		if n := jkuHits.Load() + x5uHits.Load(); n != 0 {
			t.Fatalf("attacker URLs received %d requests, want 0", n)
		}
	})
	// The real key still works with those headers present: they are simply ignored.
	mustVerify(t, v, mint("RS256", rsaKey(), map[string]any{"kid": "k1", "jwk": attackerJWK, "jku": "http://127.0.0.1:1/"}, goodClaims()))
}

func selfSignedCert(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "attacker"},
		NotBefore:    t0.Add(-time.Hour),
		NotAfter:     t0.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestPsychicSignatureRefused: the ECDSA signature r = s = 0 (CVE-2022-21449) and
// other out-of-range values never verify under ES256.
func TestPsychicSignatureRefused(t *testing.T) {
	clock := newClock()
	srv := newJWKSServer(t, jwkSpec{kid: "ec-1", key: ecKey()})
	opts := baseOptions(clock)
	opts.Algorithms = []string{"ES256"}
	opts.JWKSURL = srv.URL
	v := startedVerifier(t, opts)

	mustVerify(t, v, mint("ES256", ecKey(), map[string]any{"kid": "ec-1"}, goodClaims()))

	n := ecKey().Curve.Params().N
	pad := func(x *big.Int) []byte { return x.FillBytes(make([]byte, 32)) }
	sigs := map[string][]byte{
		"r=s=0":        make([]byte, 64),
		"r=s=n":        append(pad(n), pad(n)...),
		"r=0,s=1":      append(pad(big.NewInt(0)), pad(big.NewInt(1))...),
		"r=1,s=0":      append(pad(big.NewInt(1)), pad(big.NewInt(0))...),
		"r=n,s=1":      append(pad(n), pad(big.NewInt(1))...),
		"all ones":     []byte(strings.Repeat("\xff", 64)),
		"single zero":  {0},
		"short zeroes": make([]byte, 32),
	}
	for _, hdr := range []map[string]any{
		{"alg": "ES256", "typ": "JWT", "kid": "ec-1"},
		{"alg": "ES256", "typ": "JWT"},
	} {
		input := signingInput(hdr, goodClaims())
		for name, sig := range sigs {
			t.Run(name, func(t *testing.T) { wantRefused(t, v, input+"."+b64(sig), ErrSignature) })
		}
	}
}

// TestTooLargeRefusedBeforeParsing: tokens longer than MaxTokenBytes are refused with
// ErrTooLarge whatever they contain (even bytes no parser would accept), while a token
// with many header parameters below the limit is fine.
func TestTooLargeRefusedBeforeParsing(t *testing.T) {
	v := rsaFileVerifier(t, newClock())

	wantRefused(t, v, strings.Repeat("\x00{", DefaultMaxTokenBytes), ErrTooLarge)
	wantRefused(t, v, strings.Repeat("A", DefaultMaxTokenBytes+1), ErrTooLarge)

	big := map[string]any{}
	for i := range 400 {
		big["h"+strings.Repeat("x", 4)+string(rune('a'+i%26))+itoa(i)] = "value-value-value"
	}
	tooBig := mint("RS256", rsaKey(), big, goodClaims())
	if len(tooBig) <= DefaultMaxTokenBytes {
		t.Fatalf("test token is only %d bytes", len(tooBig))
	}
	wantRefused(t, v, tooBig, ErrTooLarge)

	many := map[string]any{}
	for i := range 150 {
		many["p"+itoa(i)] = i
	}
	ok := mint("RS256", rsaKey(), many, with(goodClaims(), "roles", strings.Split(strings.Repeat("r,", 100), ",")))
	if len(ok) > DefaultMaxTokenBytes {
		t.Fatalf("test token is %d bytes, over the limit", len(ok))
	}
	mustVerify(t, v, ok)

	t.Run("custom limit", func(t *testing.T) {
		opts := baseOptions(newClock())
		opts.Algorithms = []string{"RS256"}
		opts.KeyFiles = []string{writeFile(t, "rsa.pem", pemPublic(t, &rsaKey().PublicKey))}
		opts.MaxTokenBytes = 200
		small := newVerifierT(t, opts)
		wantRefused(t, small, mint("RS256", rsaKey(), nil, goodClaims()), ErrTooLarge)
	})
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }

// TestRefusedJOSEFeatures: serializations and header parameters the verifier does not
// support are refused rather than half-understood.
func TestRefusedJOSEFeatures(t *testing.T) {
	v := rsaFileVerifier(t, newClock())
	good := mint("RS256", rsaKey(), nil, goodClaims())
	parts := strings.Split(good, ".")

	cases := map[string]string{
		"crit":                mint("RS256", rsaKey(), map[string]any{"crit": []string{"exp"}, "exp": 1}, goodClaims()),
		"b64 false":           mint("RS256", rsaKey(), map[string]any{"b64": false, "crit": []string{"b64"}}, goodClaims()),
		"b64 false, no crit":  mint("RS256", rsaKey(), map[string]any{"b64": false}, goodClaims()),
		"nested cty JWT":      mint("RS256", rsaKey(), map[string]any{"cty": "JWT"}, goodClaims()),
		"JSON serialization":  `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`,
		"leading space":       " " + good,
		"trailing newline":    good + "\n",
		"padding":             parts[0] + "=." + parts[1] + "." + parts[2],
		"four segments":       good + ".x",
		"empty":               "",
		"dots only":           "..",
		"header not JSON":     b64([]byte("not json")) + "." + parts[1] + "." + parts[2],
		"header JSON array":   b64([]byte(`["alg","RS256"]`)) + "." + parts[1] + "." + parts[2],
		"five-part JWE shape": "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d",
	}
	for name, token := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := v.Verify(token)
			if err == nil || c != nil {
				t.Fatalf("accepted")
			}
			assertNoTokenInError(t, err, token)
		})
	}
	// Duplicate "alg" members: whichever one a parser picks, the token is refused.
	for _, hdr := range []string{`{"alg":"RS256","alg":"HS256"}`, `{"alg":"HS256","alg":"RS256"}`, `{"alg":"none","alg":"RS256"}`} {
		input := b64([]byte(hdr)) + "." + parts[1]
		for _, sig := range []string{b64(rawSign("RS256", rsaKey(), input)), b64(rawSign("HS256", pemPublic(t, &rsaKey().PublicKey), input)), ""} {
			if _, err := v.Verify(input + "." + sig); err == nil {
				t.Fatalf("accepted header %s", hdr)
			}
		}
	}
	for _, name := range []string{"crit", "b64 false", "b64 false, no crit", "nested cty JWT", "JSON serialization", "padding", "four segments", "empty"} {
		wantRefused(t, v, cases[name], ErrMalformed)
	}
}

// TestPayloadMustBeClaimsObject: a correctly signed payload that is not a JSON object,
// or whose registered claims have the wrong types, is malformed.
func TestPayloadMustBeClaimsObject(t *testing.T) {
	v := rsaFileVerifier(t, newClock())
	sign := func(payload string) string {
		input := b64JSON(map[string]any{"alg": "RS256"}) + "." + b64([]byte(payload))
		return input + "." + b64(rawSign("RS256", rsaKey(), input))
	}
	for _, p := range []string{`null`, `[]`, `"x"`, `42`, `{"exp":1}{}`, `{`, ``, `{"exp":"soon"}`, `{"iss":5,"exp":1900000000}`, `{"aud":{"a":1},"exp":1900000000}`} {
		wantRefused(t, v, sign(p), ErrMalformed)
	}
}
