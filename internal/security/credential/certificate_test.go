package credential

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
)

// newCert returns a parsed self-signed certificate with the given subject and SANs.
func newCert(t *testing.T, subject pkix.Name, dns []string, uris ...string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      subject,
		DNSNames:     dns,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestByCertificate(t *testing.T) {
	d := mustDirectory(t, []config.Consumer{
		{Name: "billing", Certificate: &config.CertificateCredential{Subjects: []string{"CN=billing,O=Example"}}},
		{Name: "search", Certificate: &config.CertificateCredential{DNSNames: []string{"Search.Internal.Example"}}},
		{Name: "orders", Certificate: &config.CertificateCredential{
			URIs: []string{"spiffe://example.org/ns/prod/sa/orders"}, DNSNames: []string{"orders.internal.example"},
		}},
	})
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"subject", newCert(t, pkix.Name{CommonName: "billing", Organization: []string{"Example"}}, nil), "billing"},
		{"other subject", newCert(t, pkix.Name{CommonName: "billing", Organization: []string{"Other"}}, nil), ""},
		{"DNS SAN, any case", newCert(t, pkix.Name{CommonName: "x"}, []string{"a.example", "search.internal.example"}), "search"},
		{"URI SAN", newCert(t, pkix.Name{CommonName: "x"}, nil, "spiffe://example.org/ns/prod/sa/orders"), "orders"},
		{"URI and DNS of one consumer", newCert(t, pkix.Name{}, []string{"orders.internal.example"}, "spiffe://example.org/ns/prod/sa/orders"), "orders"},
		{"other URI", newCert(t, pkix.Name{CommonName: "x"}, nil, "spiffe://example.org/ns/prod/sa/order"), ""},
		{"CN is not a DNS name", newCert(t, pkix.Name{CommonName: "search.internal.example"}, nil), ""},
		{"ambiguous", newCert(t, pkix.Name{CommonName: "billing", Organization: []string{"Example"}}, []string{"search.internal.example"}), ""},
		{"nil", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := d.ByCertificate(tc.cert)
			if (tc.want == "") == ok || (ok && c.Name != tc.want) {
				t.Errorf("ByCertificate = %+v, %v; want %q", c, ok, tc.want)
			}
		})
	}
}
