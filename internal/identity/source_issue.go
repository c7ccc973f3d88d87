package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/meshgate/meshgate/internal/atomicfile"
)

// Files a Source keeps in its Dir.
const (
	keyFile    = "key.pem"    // the private key, PKCS#8, mode 0600
	chainFile  = "cert.pem"   // the certificate chain, leaf first
	bundleFile = "bundle.pem" // the trust bundle's roots
)

// renew generates a new key, has a CSR for it signed, checks the answer and installs it. A
// success is counted before the certificate is installed, so whoever Updated wakes sees it counted.
func (s *Source) renew(ctx context.Context, renewal bool) error {
	err := s.obtain(ctx, renewal)
	if err != nil {
		s.metrics.renewals.WithLabelValues("failure").Inc()
	}
	return err
}

func (s *Source) obtain(ctx context.Context, renewal bool) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("identity: generate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{s.opts.ID.URL()}}, key)
	if err != nil {
		return fmt.Errorf("identity: create CSR: %w", err)
	}
	chainDER, bundleDER, err := s.opts.Sign(ctx, csr)
	if err != nil {
		return fmt.Errorf("identity: sign: %w", err)
	}
	certs, err := parseDERs(chainDER)
	if err != nil {
		return fmt.Errorf("identity: signed chain: %w", err)
	}
	var bundle *x509bundle.Bundle
	if len(bundleDER) > 0 {
		roots, err := parseDERs(bundleDER)
		if err != nil {
			return fmt.Errorf("identity: trust bundle: %w", err)
		}
		bundle = x509bundle.FromX509Authorities(s.opts.ID.TrustDomain(), roots)
	} else {
		s.mu.RLock()
		bundle = s.bundle
		s.mu.RUnlock()
		if bundle == nil {
			return errors.New("identity: the CA sent no trust bundle and none is held")
		}
	}
	now := s.opts.Now()
	svid, err := s.check(certs, key, bundle, now)
	if err != nil {
		return err
	}
	if err := s.persist(svid, bundle); err != nil {
		return err
	}
	s.metrics.renewals.WithLabelValues("success").Inc()
	s.install(svid, bundle, now, renewal)
	s.log.Info("identity: certificate obtained", "expires", svid.Certificates[0].NotAfter, "serial", svid.Certificates[0].SerialNumber.Text(16))
	return nil
}

// check verifies that certs with key is a valid SVID for the Source's ID under bundle at now.
func (s *Source) check(certs []*x509.Certificate, key crypto.Signer, bundle *x509bundle.Bundle, now time.Time) (*x509svid.SVID, error) {
	if len(certs) == 0 {
		return nil, errors.New("identity: empty certificate chain")
	}
	leaf := certs[0]
	id, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return nil, fmt.Errorf("identity: certificate: %w", err)
	}
	if id != s.opts.ID {
		return nil, fmt.Errorf("identity: the certificate is for %s, not %s", id, s.opts.ID)
	}
	if leaf.IsCA {
		return nil, errors.New("identity: the certificate is a CA certificate")
	}
	if !keyMatches(key, leaf.PublicKey) {
		return nil, errors.New("identity: the certificate does not match the key")
	}
	if _, _, err := x509svid.Verify(certs, bundle, x509svid.WithTime(now)); err != nil {
		return nil, fmt.Errorf("identity: the certificate does not verify against the trust bundle: %w", err)
	}
	return &x509svid.SVID{ID: id, Certificates: certs, PrivateKey: key}, nil
}

// install makes svid and bundle current.
func (s *Source) install(svid *x509svid.SVID, bundle *x509bundle.Bundle, obtained time.Time, renewal bool) {
	s.mu.Lock()
	s.svid, s.bundle, s.obtained = svid, bundle, obtained
	s.mu.Unlock()
	s.metrics.expiry.Set(float64(svid.Certificates[0].NotAfter.Unix()))
	s.readyOnce.Do(func() { close(s.ready) })
	if renewal {
		select {
		case s.updated <- struct{}{}:
		default:
		}
	}
}

// persist writes the chain, the bundle and the key to Dir.
func (s *Source) persist(svid *x509svid.SVID, bundle *x509bundle.Bundle) error {
	if s.opts.Dir == "" {
		return nil
	}
	if err := os.MkdirAll(s.opts.Dir, 0o700); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	k, err := keyPEM(svid.PrivateKey)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{chainFile, certsPEM(svid.Certificates), 0o644},
		{bundleFile, certsPEM(bundle.X509Authorities()), 0o644},
		{keyFile, k, 0o600},
	} {
		if err := atomicfile.Write(filepath.Join(s.opts.Dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// loadFromDisk installs the persisted certificate when it is still valid for the ID; it
// reports whether it did.
func (s *Source) loadFromDisk() bool {
	if s.opts.Dir == "" {
		return false
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(s.opts.Dir, name))
		if err != nil {
			return nil
		}
		return b
	}
	keyPEMBytes, chainPEM, bundlePEM := read(keyFile), read(chainFile), read(bundleFile)
	if keyPEMBytes == nil || chainPEM == nil || bundlePEM == nil {
		return false
	}
	err := func() error {
		key, err := parseKeyPEM(keyPEMBytes)
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		certs, err := parseCertsPEM(chainPEM)
		if err != nil {
			return fmt.Errorf("chain: %w", err)
		}
		roots, err := parseCertsPEM(bundlePEM)
		if err != nil || len(roots) == 0 {
			return fmt.Errorf("bundle: no certificates (%v)", err)
		}
		bundle := x509bundle.FromX509Authorities(s.opts.ID.TrustDomain(), roots)
		now := s.opts.Now()
		svid, err := s.check(certs, key, bundle, now)
		if err != nil {
			return err
		}
		obtained := certs[0].NotBefore.Add(Backdate)
		if obtained.After(now) {
			obtained = now
		}
		s.install(svid, bundle, obtained, false)
		s.log.Info("identity: using the persisted certificate", "expires", certs[0].NotAfter)
		return nil
	}()
	if err != nil {
		s.log.Info("identity: the persisted certificate is not usable; requesting a new one", "error", err)
		return false
	}
	return true
}

// SetBundle replaces the trust bundle with the PEM roots the control plane pushed, and keeps it
// in Dir. When the current certificate no longer chains to it, a renewal starts at once.
func (s *Source) SetBundle(pemBytes []byte) error {
	roots, err := parseCertsPEM(pemBytes)
	if err != nil {
		return fmt.Errorf("identity: trust bundle: %w", err)
	}
	if len(roots) == 0 {
		return errors.New("identity: trust bundle: no PEM certificate")
	}
	for _, r := range roots {
		if !r.IsCA {
			return fmt.Errorf("identity: trust bundle: %q is not a CA certificate", r.Subject)
		}
	}
	bundle := x509bundle.FromX509Authorities(s.opts.ID.TrustDomain(), roots)
	s.mu.Lock()
	s.bundle = bundle
	svid := s.svid
	s.mu.Unlock()
	if s.opts.Dir != "" {
		if err := os.MkdirAll(s.opts.Dir, 0o700); err != nil {
			return fmt.Errorf("identity: %w", err)
		}
		if err := atomicfile.Write(filepath.Join(s.opts.Dir, bundleFile), certsPEM(roots), 0o644); err != nil {
			return err
		}
	}
	if svid != nil {
		if _, _, err := x509svid.Verify(svid.Certificates, bundle, x509svid.WithTime(s.opts.Now())); err != nil {
			s.log.Warn("identity: the certificate does not chain to the new trust bundle; renewing now", "error", err)
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

func parseDERs(ders [][]byte) ([]*x509.Certificate, error) {
	out := make([]*x509.Certificate, 0, len(ders))
	for _, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
