package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// NewIntermediateCA returns a CA that signs with an operator-supplied intermediate: certPEM is
// its certificate (intermediates may follow it), keyPEM its private key (PKCS#8, SEC 1 or
// PKCS#1) and chainPEM its chain up to and including the root(s), which form the trust bundle.
// The key must match the certificate, which must be a CA for certificate signing, valid now for
// at least MinTTL, chain to a supplied root, carry no URI SAN outside the trust domain, and
// have name constraints (its own or its issuers') that allow the trust domain's SPIFFE IDs.
// Failures are ErrBadIntermediate.
func NewIntermediateCA(certPEM, keyPEM, chainPEM []byte, opts CAOptions) (*CA, error) {
	o, td, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	a, err := parseIntermediate(td, certPEM, keyPEM, chainPEM, o.Now(), o.MinTTL)
	if err != nil {
		return nil, err
	}
	return &CA{opts: o, td: td, kind: KindIntermediate, current: a}, nil
}

func parseIntermediate(td spiffeid.TrustDomain, certPEM, keyPEM, chainPEM []byte, now time.Time, minTTL time.Duration) (*authority, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("identity: %w: "+format, append([]any{ErrBadIntermediate}, args...)...)
	}
	certs, err := parseCertsPEM(certPEM)
	if err != nil {
		return nil, bad("certificate: %w", err)
	}
	if len(certs) == 0 {
		return nil, bad("no PEM certificate in the certificate file")
	}
	cert := certs[0]
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, bad("key: %w", err)
	}
	if !keyMatches(key, cert.PublicKey) {
		return nil, bad("the key does not match the certificate %q", cert.Subject)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, bad("%q is not a CA certificate (basic constraints)", cert.Subject)
	}
	if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, bad("%q may not sign certificates (key usage lacks certSign)", cert.Subject)
	}
	if now.Before(cert.NotBefore) || !now.Add(minTTL).Before(cert.NotAfter) {
		return nil, bad("%q is valid %s..%s, not now (%s) for at least %s", cert.Subject,
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), minTTL)
	}
	for _, u := range cert.URIs {
		id, err := spiffeid.FromURI(u)
		if err != nil {
			return nil, bad("URI SAN %q is not a SPIFFE ID: %w", u, err)
		}
		if id.TrustDomain() != td {
			return nil, bad("%w: URI SAN %s is not in trust domain %s", ErrTrustDomain, id, td)
		}
	}
	chain, err := parseCertsPEM(chainPEM)
	if err != nil {
		return nil, bad("chain: %w", err)
	}
	var roots, inters []*x509.Certificate
	for _, c := range append(certs, chain...) {
		switch {
		case isSelfSigned(c):
			if !containsCert(roots, c) {
				roots = append(roots, c)
			}
		case !c.Equal(cert) && !containsCert(inters, c):
			inters = append(inters, c)
		}
	}
	if len(roots) == 0 {
		return nil, bad("the chain holds no root (self-signed) certificate")
	}
	rp, ip := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		rp.AddCert(r)
	}
	for _, c := range inters {
		ip.AddCert(c)
	}
	chains, err := cert.Verify(x509.VerifyOptions{Roots: rp, Intermediates: ip, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return nil, bad("%q does not chain to the supplied roots: %w", cert.Subject, err)
	}
	a := &authority{cert: cert, key: key, roots: roots}
	if path := chains[0]; len(path) > 2 {
		a.chain = path[1 : len(path)-1]
	}
	if !now.Add(minTTL).Before(a.notAfter()) {
		return nil, bad("the chain of %q expires at %s, within %s", cert.Subject, a.notAfter().UTC().Format(time.RFC3339), minTTL)
	}
	// A trial leaf for a workload and one for the control plane find constraints (path length,
	// name constraints, key usages) that would make every issued certificate unverifiable.
	probe, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: probe key: %w", err)
	}
	for _, id := range []spiffeid.ID{spiffeid.RequireFromSegments(td, "ns", "default", "sa", "probe"), ControlID(td)} {
		if _, err := signLeaf(a, roots, id, probe.Public(), now, minTTL, nil, nil); err != nil {
			return nil, bad("certificates it signs would not verify: %w", err)
		}
	}
	return a, nil
}
