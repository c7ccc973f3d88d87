package config

import (
	"strings"
	"testing"
)

func TestACMEChallengeValidation(t *testing.T) {
	base := func(acmeExtra, web string) string {
		return `version: 1
listeners:
  - name: secure
    address: "127.0.0.1:8443"
    protocol: https
    tls:
      acme:
        domains: [shop.example.com]
        agreeToTerms: true
` + acmeExtra + web + `routes:
  - {name: r, filters: [{respond: {status: 204}}]}
`
	}
	const plain = "  - {name: web, address: \"127.0.0.1:8080\", protocol: http}\n"
	const h2c = "  - {name: web, address: \"127.0.0.1:8080\", protocol: h2c}\n"
	for _, tc := range []struct{ desc, yaml, want string }{
		{"http-01 on a plain listener", base("        challenge: http-01\n        httpListener: web\n", plain), ""},
		{"default tls-alpn-01", base("", ""), ""},
		{"http-01 without a listener", base("        challenge: http-01\n", ""), "httpListener: required with challenge http-01"},
		{"unknown listener", base("        challenge: http-01\n        httpListener: nope\n", ""), `listener "nope" is not defined`},
		{"not plain http", base("        challenge: http-01\n        httpListener: web\n", h2c), "answered on a plain http listener"},
		{"listener without http-01", base("        httpListener: web\n", plain), "only used with challenge http-01"},
		{"unknown challenge", base("        challenge: dns-01\n", ""), "challenge"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := LoadBytes("acme.yaml", []byte(tc.yaml))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
