// Package identity is the mesh's certificate authority and the proxies' side of workload
// identity. The CA (control plane) signs short-lived SPIFFE X.509 certificates for CSRs, serves
// the trust bundle and rotates its root with an overlap window; a Source (proxy) keeps a key and
// certificate for one SPIFFE ID, renews it at half-life and builds mTLS configs that verify
// peers' SPIFFE IDs against the current bundle.
package identity

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// CAOptions configure a CA.
type CAOptions struct {
	// TrustDomain is the mesh's SPIFFE trust domain, such as "mesh.local". Required.
	TrustDomain string
	// CertTTL is the lifetime of a certificate whose CSR asks for none. Default 24h.
	CertTTL time.Duration
	// MinTTL is the shortest lifetime the CA signs; shorter requests are lengthened. Default 1m.
	MinTTL time.Duration
	// MaxTTL is the longest lifetime the CA signs; longer requests are shortened. After a root
	// rotation switches signing to the new root, the old root stays in the bundle this long.
	// Default 7 days.
	MaxTTL time.Duration
	// Propagation is how long, in a rotation, the new root is only distributed in the bundle
	// before it signs. Default 1m.
	Propagation time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Kinds of CA.
const (
	// KindRoot is a CA that generated its own root and signs with it.
	KindRoot = "root"
	// KindIntermediate is a CA that signs with an operator-supplied intermediate certificate.
	KindIntermediate = "intermediate"
)

// rootLifetime is the validity of a generated root.
const rootLifetime = 10 * 365 * 24 * time.Hour

// Backdate is how far before their issue leaves start to be valid, for peers whose clocks lag.
const Backdate = 30 * time.Second

func (o CAOptions) withDefaults() (CAOptions, spiffeid.TrustDomain, error) {
	td, err := spiffeid.TrustDomainFromString(o.TrustDomain)
	if err != nil {
		return o, td, fmt.Errorf("identity: %w: trust domain %q: %w", ErrOptions, o.TrustDomain, err)
	}
	if o.CertTTL == 0 {
		o.CertTTL = 24 * time.Hour
	}
	if o.MinTTL == 0 {
		o.MinTTL = time.Minute
	}
	if o.MaxTTL == 0 {
		o.MaxTTL = 7 * 24 * time.Hour
	}
	if o.Propagation == 0 {
		o.Propagation = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch {
	case o.MinTTL < 0 || o.Propagation < 0:
		return o, td, fmt.Errorf("identity: %w: negative duration", ErrOptions)
	case o.MinTTL > o.MaxTTL:
		return o, td, fmt.Errorf("identity: %w: min TTL %s is above max TTL %s", ErrOptions, o.MinTTL, o.MaxTTL)
	case o.CertTTL < o.MinTTL || o.CertTTL > o.MaxTTL:
		return o, td, fmt.Errorf("identity: %w: certificate TTL %s is outside %s..%s", ErrOptions, o.CertTTL, o.MinTTL, o.MaxTTL)
	}
	return o, td, nil
}

// authority is one signing certificate with its key, the intermediates between it and a root
// (none for a root), and the roots it chains to.
type authority struct {
	cert  *x509.Certificate
	key   crypto.Signer
	chain []*x509.Certificate
	roots []*x509.Certificate
}

// notAfter is the end of the authority's validity: the earliest NotAfter of its certificate
// and its intermediates.
func (a *authority) notAfter() time.Time {
	t := a.cert.NotAfter
	for _, c := range a.chain {
		if c.NotAfter.Before(t) {
			t = c.NotAfter
		}
	}
	return t
}

// notBefore is the latest NotBefore of the certificate and its intermediates.
func (a *authority) notBefore() time.Time {
	t := a.cert.NotBefore
	for _, c := range a.chain {
		if c.NotBefore.After(t) {
			t = c.NotBefore
		}
	}
	return t
}

// CA signs workload certificates for one trust domain. It is safe for concurrent use. Its
// whole state (keys included) is Marshal'ed for the control plane's store.
type CA struct {
	opts CAOptions
	td   spiffeid.TrustDomain

	mu       sync.RWMutex
	kind     string // of current
	current  *authority
	next     *authority          // during PhasePropagating: the authority that will sign
	nextKind string              // of next
	retiring []*x509.Certificate // during PhaseOverlap: old roots still trusted
	rot      rotation
}

// NewRootCA generates a CA with a new self-signed root (ECDSA P-256, valid 10 years, URI SAN
// spiffe://<trust domain>) that signs leaves directly.
func NewRootCA(opts CAOptions) (*CA, error) {
	o, td, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	a, err := generateRoot(td, o.Now())
	if err != nil {
		return nil, err
	}
	return &CA{opts: o, td: td, kind: KindRoot, current: a}, nil
}

// TrustDomain is the CA's trust domain.
func (ca *CA) TrustDomain() spiffeid.TrustDomain { return ca.td }

// Kind is KindRoot or KindIntermediate.
func (ca *CA) Kind() string {
	ca.mu.RLock()
	defer ca.mu.RUnlock()
	return ca.kind
}

// Bundle returns the roots proxies must trust now: the signing roots and, during a rotation,
// the incoming or the retiring ones. The certificates must not be modified.
func (ca *CA) Bundle() []*x509.Certificate {
	ca.mu.RLock()
	defer ca.mu.RUnlock()
	return ca.bundleLocked()
}

func (ca *CA) bundleLocked() []*x509.Certificate {
	var out []*x509.Certificate
	add := func(cs []*x509.Certificate) {
		for _, c := range cs {
			if !containsCert(out, c) {
				out = append(out, c)
			}
		}
	}
	add(ca.retiring)
	add(ca.current.roots)
	if ca.next != nil {
		add(ca.next.roots)
	}
	return out
}

// BundlePEM returns Bundle as PEM "CERTIFICATE" blocks.
func (ca *CA) BundlePEM() []byte {
	return certsPEM(ca.Bundle())
}

// SigningCertificate returns the certificate that signs leaves now.
func (ca *CA) SigningCertificate() *x509.Certificate {
	ca.mu.RLock()
	defer ca.mu.RUnlock()
	return ca.current.cert
}

func containsCert(cs []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range cs {
		if x.Equal(c) {
			return true
		}
	}
	return false
}

func certsPEM(cs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range cs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}
