package identity

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Sign certifies the SPIFFE ID in a PKCS#10 CSR (DER) and returns the chain, leaf first, in
// DER: the leaf and the intermediates up to (not including) the root.
//
// The CSR's signature must verify; it must carry exactly one URI SAN, a workload SPIFFE ID of
// the CA's trust domain (spiffe://<td>/ns/<namespace>/sa/<service>, not the control plane's
// own), and no DNS, IP or e-mail SANs; its key must be ECDSA P-256/P-384, Ed25519 or RSA of at
// least 2048 bits. authorize decides whether the presenter may hold the identity; its error is
// returned as ErrNotAuthorized and unwraps to the callback's error. A nil authorize allows
// every identity.
//
// ttl 0 means CertTTL; ttl is clamped to [MinTTL, MaxTTL] and never runs past the signing
// certificate's end. The leaf has a random 128-bit serial, starts 30s before now (not before
// its issuer), and is for digital signature (and key encipherment for RSA keys), TLS server and
// client use.
func (ca *CA) Sign(csrDER []byte, ttl time.Duration, authorize func(spiffeid.ID) error) ([][]byte, error) {
	csr, id, err := ca.checkCSR(csrDER)
	if err != nil {
		return nil, err
	}
	if authorize != nil {
		if err := authorize(id); err != nil {
			return nil, &authorizationError{id: id, err: err}
		}
	}
	return ca.issue(id, csr.PublicKey, ttl, nil, nil)
}

// checkCSR parses and checks a CSR and returns it with its SPIFFE ID.
func (ca *CA) checkCSR(der []byte) (*x509.CertificateRequest, spiffeid.ID, error) {
	if len(der) == 0 {
		return nil, spiffeid.ID{}, fmt.Errorf("identity: %w: empty CSR", ErrBadCSR)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, spiffeid.ID{}, fmt.Errorf("identity: %w: %w", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, spiffeid.ID{}, fmt.Errorf("identity: %w: signature: %w", ErrBadCSR, err)
	}
	switch {
	case len(csr.URIs) != 1:
		return nil, spiffeid.ID{}, fmt.Errorf("identity: %w: %d URI SANs, want exactly one SPIFFE ID", ErrBadCSR, len(csr.URIs))
	case len(csr.DNSNames) > 0:
		return nil, spiffeid.ID{}, fmt.Errorf("identity: %w: DNS SANs are not allowed", ErrBadCSR)
	case len(csr.IPAddresses) > 0:
		return nil, spiffeid.ID{}, fmt.Errorf("identity: %w: IP SANs are not allowed", ErrBadCSR)
	case len(csr.EmailAddresses) > 0:
		return nil, spiffeid.ID{}, fmt.Errorf("identity: %w: e-mail SANs are not allowed", ErrBadCSR)
	}
	id, err := spiffeid.FromURI(csr.URIs[0])
	if err != nil {
		return nil, spiffeid.ID{}, fmt.Errorf("identity: %w: URI SAN is not a SPIFFE ID: %w", ErrBadCSR, err)
	}
	if id.TrustDomain() != ca.td {
		return nil, spiffeid.ID{}, fmt.Errorf("identity: %w: %s is not in trust domain %s", ErrTrustDomain, id, ca.td)
	}
	if _, _, err := ParseWorkloadID(id); err != nil {
		return nil, spiffeid.ID{}, err
	}
	if id == ControlID(ca.td) {
		return nil, spiffeid.ID{}, fmt.Errorf("identity: %w: %s is reserved for the control plane", ErrBadIdentity, id)
	}
	if err := checkLeafKey(csr.PublicKey); err != nil {
		return nil, spiffeid.ID{}, err
	}
	return csr, id, nil
}

// clampTTL applies the default and the bounds to a requested lifetime.
func (ca *CA) clampTTL(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		ttl = ca.opts.CertTTL
	}
	return min(max(ttl, ca.opts.MinTTL), ca.opts.MaxTTL)
}

// issue signs a leaf for id and pub with the current authority and returns the DER chain.
func (ca *CA) issue(id spiffeid.ID, pub crypto.PublicKey, ttl time.Duration, dns []string, ips []net.IP) ([][]byte, error) {
	now := ca.opts.Now()
	ca.mu.RLock()
	a := ca.current
	bundle := ca.bundleLocked()
	ca.mu.RUnlock()
	return signLeaf(a, bundle, id, pub, now, ca.clampTTL(ttl), dns, ips)
}

// signLeaf signs a leaf with authority a valid from 30s before now (not before the issuer) for
// ttl (not past the issuer), checks that it verifies against bundle, and returns the DER chain.
func signLeaf(a *authority, bundle []*x509.Certificate, id spiffeid.ID, pub crypto.PublicKey, now time.Time, ttl time.Duration, dns []string, ips []net.IP) ([][]byte, error) {
	skid, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	end := a.notAfter()
	if !now.Before(end) || now.Before(a.notBefore()) {
		return nil, fmt.Errorf("identity: %w: %s is valid %s..%s, now is %s", ErrCAExpired, a.cert.Subject,
			a.notBefore().UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	notAfter := now.Add(ttl)
	if notAfter.After(end) {
		notAfter = end
	}
	notBefore := now.Add(-Backdate)
	if nb := a.notBefore(); notBefore.Before(nb) {
		notBefore = nb
	}
	usage := x509.KeyUsageDigitalSignature
	if _, ok := pub.(*rsa.PublicKey); ok {
		usage |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		URIs:                  []*url.URL{id.URL()},
		DNSNames:              dns,
		IPAddresses:           ips,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          skid,
		AuthorityKeyId:        a.cert.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, pub, a.key)
	if err != nil {
		return nil, fmt.Errorf("identity: sign %s: %w", id, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("identity: parse the certificate signed for %s: %w", id, err)
	}
	// The signer's own chain and constraints must accept what it signed: a name-constrained
	// intermediate, for one, would otherwise hand out certificates no peer accepts.
	inter := append([]*x509.Certificate{a.cert}, a.chain...)
	if err := verifyChain(leaf, inter, bundle, now); err != nil {
		return nil, fmt.Errorf("identity: the certificate signed for %s does not verify against the bundle: %w", id, err)
	}
	out := [][]byte{der}
	if !isSelfSigned(a.cert) {
		out = append(out, a.cert.Raw)
	}
	for _, c := range a.chain {
		out = append(out, c.Raw)
	}
	return out, nil
}
