package control

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshgate/meshgate/internal/control/token"
)

func TestSignWithJoinToken(t *testing.T) {
	p := startPlane(t, nil)
	cert := p.mustSign(t, "spiffe://mesh.local/ns/shop/sa/users")
	if got := cert.Leaf.URIs[0].String(); got != "spiffe://mesh.local/ns/shop/sa/users" {
		t.Errorf("URI SAN = %s", got)
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		c, _ := x509.ParseCertificate(der)
		inter.AddCert(c)
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: p.bundleFilePool(t), Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the certificate does not chain to bundle.pem: %v", err)
	}
	if ttl := cert.Leaf.NotAfter.Sub(time.Now()); ttl < 23*time.Hour || ttl > 25*time.Hour {
		t.Errorf("lifetime %s, want the default 24h", ttl)
	}
	// Renewal: the certificate itself authorises a new one for the same identity, not another.
	conn := p.dial(t, cert)
	if _, err := sign(t, conn, "", "spiffe://mesh.local/ns/shop/sa/users"); err != nil {
		t.Errorf("renewal with the current certificate: %v", err)
	}
	_, err := sign(t, conn, "", "spiffe://mesh.local/ns/shop/sa/orders")
	if status.Code(err) != codes.PermissionDenied || p.authFailures("Sign", authIdentityMismatch) != 1 {
		t.Errorf("renewing another identity: %v (want PermissionDenied, counted)", err)
	}
}

func TestSignRefusals(t *testing.T) {
	p := startPlane(t, nil)
	scoped, _, err := p.tokens.Create(context.Background(), token.Grant{Namespace: "shop", Service: "users"}, time.Hour, "test")
	if err != nil {
		t.Fatal(err)
	}
	expired, _, err := p.tokens.Create(context.Background(), token.Grant{Namespace: "*", Service: "*"}, time.Minute, "test")
	if err != nil {
		t.Fatal(err)
	}
	p.mustSign(t, "spiffe://mesh.local/ns/shop/sa/warm") // the serving certificate is issued now
	p.clock.set(2 * time.Minute)
	defer p.clock.set(0)
	tests := []struct {
		desc, token, id string
		code            codes.Code
		reason, msg     string
	}{
		{"a wrong join token", "mgjt_000000000000.nope", "spiffe://mesh.local/ns/shop/sa/users", codes.Unauthenticated, authTokenInvalid, "invalid join token"},
		{"a malformed join token", "hunter2", "spiffe://mesh.local/ns/shop/sa/users", codes.Unauthenticated, authTokenInvalid, "invalid join token"},
		{"a token for another identity", scoped, "spiffe://mesh.local/ns/shop/sa/orders", codes.PermissionDenied, authNotGranted, "grants shop/users, not shop/orders"},
		{"an expired token", expired, "spiffe://mesh.local/ns/shop/sa/users", codes.Unauthenticated, authTokenExpired, "join token expired"},
		{"no token and no certificate", "", "spiffe://mesh.local/ns/shop/sa/users", codes.Unauthenticated, authNoCertificate, "no client certificate"},
		{"another trust domain", scoped, "spiffe://other.example/ns/shop/sa/users", codes.InvalidArgument, "", "trust domain"},
		{"not a workload identity", p.token, "spiffe://mesh.local/users", codes.InvalidArgument, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			before := 0.0
			if tc.reason != "" {
				before = p.authFailures("Sign", tc.reason)
			}
			_, err := sign(t, p.dial(t, nil), tc.token, tc.id)
			if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Fatalf("got %v, want %s containing %q", err, tc.code, tc.msg)
			}
			if tc.reason != "" && p.authFailures("Sign", tc.reason) != before+1 {
				t.Errorf("meshgate_control_auth_failures_total{rpc=Sign,reason=%s} did not grow", tc.reason)
			}
		})
	}
	if _, err := sign(t, p.dial(t, nil), scoped, "spiffe://mesh.local/ns/shop/sa/users"); err != nil {
		t.Errorf("the scoped token for its own identity: %v", err)
	}
}

func TestExpiredClientCertificate(t *testing.T) {
	// The control plane starts three hours ago and issues a certificate for one hour.
	clock := &testClock{offset: -3 * time.Hour}
	p := startPlane(t, func(o *Options) { o.CertTTL, o.Now = time.Hour, clock.now })
	p.clock = clock // the client shares the clock, to verify the serving certificate
	cert := p.mustSign(t, "spiffe://mesh.local/ns/shop/sa/users")
	clock.set(0)
	before := p.authFailures("Sign", authExpired)
	_, err := sign(t, p.dial(t, cert), "", "spiffe://mesh.local/ns/shop/sa/users")
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(status.Convert(err).Message(), "expired at") {
		t.Fatalf("renewal with an expired certificate: %v, want Unauthenticated saying when it expired", err)
	}
	if p.authFailures("Sign", authExpired) != before+1 {
		t.Error("the refusal was not counted as certificate_expired")
	}
	// With the join token the workload gets a new certificate.
	if _, err := sign(t, p.dial(t, cert), p.token, "spiffe://mesh.local/ns/shop/sa/users"); err != nil {
		t.Errorf("a join token after expiry: %v", err)
	}
}
