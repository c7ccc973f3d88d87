package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
)

// ServingCertificate issues a certificate for the control plane's own gRPC listener: a new
// ECDSA P-256 key, the SPIFFE ID spiffe://<td>/ns/meshgate-system/sa/control and the given DNS
// names and IP addresses, for CertTTL (within the TTL bounds). Proxies verify it with the trust
// bundle. The returned certificate has Leaf set; reissue it well before it expires, for example
// at half-life.
func (ca *CA) ServingCertificate(dnsNames []string, ips []net.IP) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("identity: serving key: %w", err)
	}
	chain, err := ca.issue(ControlID(ca.td), key.Public(), ca.opts.CertTTL, dnsNames, ips)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("identity: serving certificate: %w", err)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}
