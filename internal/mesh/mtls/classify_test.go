package mtls

import (
	"errors"
	"fmt"
	"testing"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		desc string
		err  error
		want string
	}{
		{"foreign domain sentinel", fmt.Errorf("mtls: %w", errForeignDomain), FailureForeignDomain},
		{"no bundle for the peer's trust domain", errors.New(`x509svid: could not get X509 bundle: identity: no trust bundle for trust domain "evil.example" (only "mesh.local")`), FailureForeignDomain},
		{"unknown authority", errors.New("x509svid: could not verify leaf certificate: x509: certificate signed by unknown authority"), FailureUntrusted},
		{"client sent no certificate", errors.New("mtls: handshake from 10.0.0.1:1: tls: client didn't provide a certificate"), FailureNoCertificate},
		{"server required one", errors.New("remote error: tls: certificate required"), FailureNoCertificate},
		{"expired", errors.New("x509: certificate has expired or is not yet valid"), FailureExpired},
		{"not TLS", errors.New("tls: first record does not look like a TLS handshake"), FailureProtocol},
		{"anything else", errors.New("EOF"), FailureHandshake},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			if got := Classify(tc.err); got != tc.want {
				t.Fatalf("Classify(%q) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}
