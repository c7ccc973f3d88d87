package jwtauth

import (
	"testing"
	"time"
)

// TestNewRejectsBadOptions: New refuses configurations that are unsafe or unusable.
func TestNewRejectsBadOptions(t *testing.T) {
	keyFile := writeFile(t, "rsa.pem", pemPublic(t, &rsaKey().PublicKey))
	good := func() Options {
		return Options{Algorithms: []string{"RS256"}, KeyFiles: []string{keyFile}}
	}
	if _, err := New(good()); err != nil {
		t.Fatalf("baseline options refused: %v", err)
	}
	cases := map[string]func(*Options){
		"no algorithms":          func(o *Options) { o.Algorithms = nil },
		"none":                   func(o *Options) { o.Algorithms = []string{"none"} },
		"unknown algorithm":      func(o *Options) { o.Algorithms = []string{"RS1"} },
		"lower-case algorithm":   func(o *Options) { o.Algorithms = []string{"rs256"} },
		"ES256K not supported":   func(o *Options) { o.Algorithms = []string{"ES256K"} },
		"HS mixed with RS":       func(o *Options) { o.Algorithms = []string{"HS256", "RS256"} },
		"HS mixed with EdDSA":    func(o *Options) { o.Algorithms = []string{"EdDSA", "HS512"} },
		"no key source":          func(o *Options) { o.KeyFiles = nil },
		"JWKS URL not http":      func(o *Options) { o.JWKSURL = "file:///etc/jwks.json" },
		"JWKS URL relative":      func(o *Options) { o.JWKSURL = "/jwks.json" },
		"JWKS URL unparsable":    func(o *Options) { o.JWKSURL = "http://[::1" },
		"negative leeway":        func(o *Options) { o.Leeway = -time.Second },
		"negative refresh":       func(o *Options) { o.RefreshInterval = -time.Second },
		"negative fetch timeout": func(o *Options) { o.FetchTimeout = -time.Second },
		"max key age below refresh": func(o *Options) {
			o.RefreshInterval, o.MaxKeyAge = time.Hour, time.Minute
		},
		"negative token limit": func(o *Options) { o.MaxTokenBytes = -1 },
		"negative JWKS limit":  func(o *Options) { o.MaxJWKSBytes = -1 },
		"empty audience":       func(o *Options) { o.Audiences = []string{""} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			o := good()
			mutate(&o)
			if v, err := New(o); err == nil {
				v.Close()
				t.Fatal("New accepted the options")
			}
		})
	}
}

// TestOptionsDefaults: zero values take the documented defaults, and the caller's
// slices are copied.
func TestOptionsDefaults(t *testing.T) {
	keyFile := writeFile(t, "rsa.pem", pemPublic(t, &rsaKey().PublicKey))
	algs := []string{"RS256"}
	v := newVerifierT(t, Options{Algorithms: algs, KeyFiles: []string{keyFile}, JWKSURL: "https://idp.example/jwks"})
	s := v.s
	if s.RefreshInterval != DefaultRefreshInterval || s.MinRefetchInterval != DefaultMinRefetchInterval ||
		s.MaxKeyAge != DefaultMaxKeyAge || s.FetchTimeout != DefaultFetchTimeout ||
		s.MaxJWKSBytes != DefaultMaxJWKSBytes || s.MaxTokenBytes != DefaultMaxTokenBytes ||
		s.Logger == nil || s.Now == nil || s.AllowMissingExp {
		t.Fatalf("defaults not applied: %+v", s.Options)
	}
	algs[0] = "HS256"
	if _, ok := s.algs["RS256"]; !ok || len(s.algs) != 1 || s.Algorithms[0] != "RS256" {
		t.Fatal("Verifier shares the caller's Algorithms slice")
	}
}
