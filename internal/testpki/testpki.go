// Package testpki issues throwaway certificates for tests: a certificate authority, server
// certificates for DNS names and client certificates for subjects, written as PEM files. It is
// imported only by tests.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// PKI is a certificate authority and the files of the certificates it issued.
type PKI struct {
	// CAFile is the CA certificate, for peers to trust.
	CAFile string
	// Pool holds the CA certificate.
	Pool *x509.CertPool
	// Certs maps a DNS name (server) or common name (client) to the files of its certificate.
	Certs map[string]Files

	t      testing.TB
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial atomic.Int64
}

// Files are the PEM files of one leaf certificate and its key, and the parsed leaf.
type Files struct {
	Cert, Key string
	Leaf      *x509.Certificate
	// Pair is the certificate and key, ready for a tls.Config.
	Pair tls.Certificate
}

// New generates an ECDSA P-256 CA valid for an hour, and one server certificate per name, and
// writes them to dir.
func New(t testing.TB, dir string, names ...string) *PKI {
	t.Helper()
	caKey := newKey(t)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "meshgate test CA " + filepath.Base(dir)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := &PKI{CAFile: filepath.Join(dir, "ca.crt"), Pool: x509.NewCertPool(), Certs: map[string]Files{},
		t: t, dir: dir, ca: ca, caKey: caKey}
	p.serial.Store(1)
	p.Pool.AddCert(ca)
	WritePEM(t, p.CAFile, "CERTIFICATE", caDER)
	for _, name := range names {
		p.Server(name)
	}
	return p
}

// Server issues a server certificate for the DNS name and writes it as name.crt and name.key.
func (p *PKI) Server(name string) Files {
	return p.issue(name, &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		DNSNames:    []string{name},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// Client issues a client certificate with the common name and organisation, and the URI SANs
// given, written as cn.crt and cn.key.
func (p *PKI) Client(cn, org string, uris ...string) Files {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: []string{org}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, u := range uris {
		parsed, err := url.Parse(u)
		if err != nil {
			p.t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	return p.issue(cn, tmpl)
}

// issue signs tmpl with the CA and writes the certificate and key under base.
func (p *PKI) issue(base string, tmpl *x509.Certificate) Files {
	t := p.t
	t.Helper()
	key := newKey(t)
	now := time.Now()
	tmpl.SerialNumber = big.NewInt(p.serial.Add(1))
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := Files{Cert: filepath.Join(p.dir, base+".crt"), Key: filepath.Join(p.dir, base+".key"), Leaf: leaf}
	WritePEM(t, f.Cert, "CERTIFICATE", der)
	WritePEM(t, f.Key, "PRIVATE KEY", keyDER)
	f.Pair = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	p.Certs[base] = f
	return f
}

// newKey returns a fresh ECDSA P-256 key.
func newKey(t testing.TB) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// WritePEM writes one PEM block to path.
func WritePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
