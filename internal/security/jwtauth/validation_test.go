package jwtauth

import (
	"testing"
	"time"
)

// TestTimeClaims: exp, nbf and iat are checked against Options.Now with the leeway
// applied on both sides of each bound.
func TestTimeClaims(t *testing.T) {
	const leeway = 30 * time.Second
	now := t0.Unix()
	verifier := func(t *testing.T, leeway time.Duration, allowMissingExp bool) *Verifier {
		opts := baseOptions(newClock())
		opts.Algorithms = []string{"ES256"}
		opts.KeyFiles = []string{writeFile(t, "ec.pem", pemPublic(t, &ecKey().PublicKey))}
		opts.Leeway = leeway
		opts.AllowMissingExp = allowMissingExp
		return newVerifierT(t, opts)
	}
	strict := verifier(t, 0, false)
	lenient := verifier(t, leeway, false)
	noExp := verifier(t, 0, true)

	tok := func(kv ...any) string { return mint("ES256", ecKey(), nil, with(goodClaims(), kv...)) }

	cases := []struct {
		name  string
		v     *Verifier
		token string
		want  error // nil: accepted
	}{
		{"exp in the future", strict, tok("exp", now+1), nil},
		{"exp now", strict, tok("exp", now), ErrExpired},
		{"exp past", strict, tok("exp", now-1), ErrExpired},
		{"exp past within leeway", lenient, tok("exp", now-29), nil},
		{"exp past beyond leeway", lenient, tok("exp", now-31), ErrExpired},
		{"exp fractional", strict, tok("exp", float64(now)+1.5), nil},
		{"exp fractional is truncated to the second", strict, tok("exp", float64(now)+0.5), ErrExpired},
		{"nbf now", strict, tok("nbf", now), nil},
		{"nbf future", strict, tok("nbf", now+1), ErrNotYetValid},
		{"nbf future within leeway", lenient, tok("nbf", now+29), nil},
		{"nbf future beyond leeway", lenient, tok("nbf", now+31), ErrNotYetValid},
		{"iat future", strict, tok("iat", now+1), ErrNotYetValid},
		{"iat future within leeway", lenient, tok("iat", now+29), nil},
		{"iat future beyond leeway", lenient, tok("iat", now+31), ErrNotYetValid},
		{"exp missing refused by default", strict, tok("exp", nil), ErrMissingClaim},
		{"exp missing refused with leeway", lenient, tok("exp", nil), ErrMissingClaim},
		{"exp missing allowed when configured", noExp, tok("exp", nil), nil},
		{"exp present still checked when missing is allowed", noExp, tok("exp", now-1), ErrExpired},
		{"exp not a number", strict, tok("exp", "tomorrow"), ErrMalformed},
		{"exp array", strict, tok("exp", []any{now + 60}), ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.want == nil {
				mustVerify(t, c.v, c.token)
				return
			}
			wantRefused(t, c.v, c.token, c.want)
		})
	}
}

// TestIssuerAndAudience: iss must equal Options.Issuer; aud must name one of
// Options.Audiences; both are skipped when not configured.
func TestIssuerAndAudience(t *testing.T) {
	clock := newClock()
	keyFile := writeFile(t, "ed.pem", pemPublic(t, edKey().Public()))
	opts := baseOptions(clock)
	opts.Algorithms = []string{"EdDSA"}
	opts.KeyFiles = []string{keyFile}
	opts.Audiences = []string{"meshgate", "meshgate-admin"}
	v := newVerifierT(t, opts)

	open := opts
	open.Issuer, open.Audiences = "", nil
	anyIssuer := newVerifierT(t, open)

	tok := func(kv ...any) string { return mint("EdDSA", edKey(), nil, with(goodClaims(), kv...)) }
	cases := []struct {
		name  string
		v     *Verifier
		token string
		want  error
	}{
		{"good", v, tok(), nil},
		{"iss mismatch", v, tok("iss", "https://evil.example"), ErrIssuer},
		{"iss prefix", v, tok("iss", testIssuer+"/"), ErrIssuer},
		{"iss case", v, tok("iss", "HTTPS://IDP.EXAMPLE"), ErrIssuer},
		{"iss missing", v, tok("iss", nil), ErrIssuer},
		{"iss not a string", v, tok("iss", 7), ErrMalformed},
		{"aud mismatch", v, tok("aud", "other"), ErrAudience},
		{"aud list without ours", v, tok("aud", []string{"a", "b"}), ErrAudience},
		{"aud list with ours", v, tok("aud", []string{"a", "meshgate-admin"}), nil},
		{"aud missing", v, tok("aud", nil), ErrAudience},
		{"aud empty list", v, tok("aud", []string{}), ErrAudience},
		{"aud not strings", v, tok("aud", []any{1, 2}), ErrMalformed},
		{"not configured: any iss", anyIssuer, tok("iss", "https://elsewhere.example"), nil},
		{"not configured: no aud", anyIssuer, tok("aud", nil), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.want == nil {
				mustVerify(t, c.v, c.token)
				return
			}
			wantRefused(t, c.v, c.token, c.want)
		})
	}
}

// TestClaimsReturned: Verify returns every claim, custom ones included, with numbers
// kept exactly.
func TestClaimsReturned(t *testing.T) {
	v := rsaFileVerifier(t, newClock())
	input := b64JSON(map[string]any{"alg": "RS256"}) + "." +
		b64([]byte(`{"iss":"`+testIssuer+`","aud":["x","`+testAudience+`"],"sub":"u-9","exp":1800003600,`+
			`"uid":12345678901234567890,"admin":true,"scope":"read write","roles":["a","b"],"org":{"id":"o1"}}`))
	c := mustVerify(t, v, input+"."+b64(rawSign("RS256", rsaKey(), input)))

	if s, _ := c.String("sub"); s != "u-9" {
		t.Errorf("sub = %q", s)
	}
	if s, _ := c.String("uid"); s != "12345678901234567890" {
		t.Errorf("uid = %q, want all digits kept", s)
	}
	if s, _ := c.String("exp"); s != "1800003600" {
		t.Errorf("exp = %q", s)
	}
	if s, _ := c.String("admin"); s != "true" {
		t.Errorf("admin = %q", s)
	}
	if got := c.Strings("aud"); len(got) != 2 || got[1] != testAudience {
		t.Errorf("aud = %q", got)
	}
	if got := c.Fields("scope"); len(got) != 2 || got[0] != "read" || got[1] != "write" {
		t.Errorf("scope fields = %q", got)
	}
	if org, ok := c["org"].(map[string]any); !ok || org["id"] != "o1" {
		t.Errorf("org = %v", c["org"])
	}
	if exp, ok := c.Time("exp"); !ok || !exp.Equal(time.Unix(1800003600, 0)) {
		t.Errorf("exp time = %v", exp)
	}
}
