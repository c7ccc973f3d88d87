package identity

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// SignFunc sends a CSR (DER) to the CA and returns the certificate chain (DER, leaf first) and
// the trust bundle's roots (DER).
type SignFunc func(ctx context.Context, csrDER []byte) (chain [][]byte, bundle [][]byte, err error)

// SourceOptions configure a Source.
type SourceOptions struct {
	// ID is the SPIFFE ID the certificate is for. Required.
	ID spiffeid.ID
	// Dir is where the key (mode 0600), the chain and the bundle persist across restarts; ""
	// keeps them in memory only.
	Dir string
	// Sign obtains a certificate for a CSR. Required.
	Sign SignFunc
	// TTL is the lifetime asked for. It is used by Sign's implementation (the CA decides); the
	// Source renews at half the lifetime it actually got.
	TTL time.Duration
	// Log receives renewals and failures. Default slog.Default().
	Log *slog.Logger
	// Now is the clock used to judge validity and schedule renewals. Default time.Now.
	Now func() time.Time
	// Registerer, when set, receives meshgate_identity_certificate_expiry_timestamp_seconds and
	// meshgate_identity_renewals_total{result}.
	Registerer prometheus.Registerer
}

// Source holds a workload's key, certificate and trust bundle, and renews the certificate at
// half-life. It implements go-spiffe's x509svid.Source and x509bundle.Source, so TLS configs
// built on it pick up renewed certificates and bundles without being rebuilt. It is safe for
// concurrent use.
type Source struct {
	opts    SourceOptions
	log     *slog.Logger
	metrics *sourceMetrics

	mu       sync.RWMutex
	svid     *x509svid.SVID
	obtained time.Time // when svid was obtained (its renewal is scheduled from here)
	bundle   *x509bundle.Bundle

	ready     chan struct{}
	readyOnce sync.Once
	updated   chan struct{} // one pending signal per renewal
	kick      chan struct{} // renew now: the bundle no longer covers the certificate

	runMu   sync.Mutex
	running bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

var (
	_ x509svid.Source   = (*Source)(nil)
	_ x509bundle.Source = (*Source)(nil)
)

// NewSource checks opts and returns a Source that holds no certificate until Start.
func NewSource(opts SourceOptions) (*Source, error) {
	if opts.ID.IsZero() {
		return nil, fmt.Errorf("identity: source: %w: no SPIFFE ID", ErrOptions)
	}
	if opts.Sign == nil {
		return nil, fmt.Errorf("identity: source: %w: no Sign function", ErrOptions)
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m, err := newSourceMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Source{
		opts: opts, log: opts.Log.With("spiffe_id", opts.ID.String()), metrics: m,
		ready: make(chan struct{}), updated: make(chan struct{}, 1), kick: make(chan struct{}, 1),
	}, nil
}

// ID is the SPIFFE ID the Source holds a certificate for.
func (s *Source) ID() spiffeid.ID { return s.opts.ID }

// Ready is closed once the Source holds a certificate.
func (s *Source) Ready() <-chan struct{} { return s.ready }

// Updated receives a value after each renewal (not the first certificate); it holds at most
// one pending value.
func (s *Source) Updated() <-chan struct{} { return s.updated }

// Expiry is when the current certificate expires; zero before the first one.
func (s *Source) Expiry() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.svid == nil {
		return time.Time{}
	}
	return s.svid.Certificates[0].NotAfter
}

// GetX509SVID returns the current certificate and key. It implements x509svid.Source.
func (s *Source) GetX509SVID() (*x509svid.SVID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.svid == nil {
		return nil, fmt.Errorf("identity: no certificate yet for %s", s.opts.ID)
	}
	return s.svid, nil
}

// GetX509BundleForTrustDomain returns the trust bundle of the Source's own trust domain. It
// implements x509bundle.Source.
func (s *Source) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if td != s.opts.ID.TrustDomain() {
		return nil, fmt.Errorf("identity: no trust bundle for trust domain %q (only %q)", td, s.opts.ID.TrustDomain())
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.bundle == nil {
		return nil, fmt.Errorf("identity: no trust bundle yet for %q", td)
	}
	return s.bundle, nil
}

// TLSCertificate returns the current certificate as a tls.Certificate (with Leaf set).
func (s *Source) TLSCertificate() (*tls.Certificate, error) {
	v, err := s.GetX509SVID()
	if err != nil {
		return nil, err
	}
	c := &tls.Certificate{PrivateKey: v.PrivateKey, Leaf: v.Certificates[0]}
	for _, x := range v.Certificates {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c, nil
}

// Start obtains a certificate — the persisted one if it is still valid for the ID, with a key
// that matches and a chain that verifies against the persisted bundle, else a new key and a
// CSR sent to Sign — and then renews it in the background, at half-life with ±10% jitter and
// with a new key each time, retrying failures with backoff from 500ms to 30s, until ctx ends or
// Close. A failed Start may be called again; a second Start after a successful one fails.
func (s *Source) Start(ctx context.Context) error {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.running {
		return errors.New("identity: source already started")
	}
	if !s.loadFromDisk() {
		if err := s.renew(ctx, false); err != nil {
			return err
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	s.running, s.cancel = true, cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.renewLoop(rctx)
	}()
	return nil
}

// Close stops the renewals and waits for them to end.
func (s *Source) Close() {
	s.runMu.Lock()
	cancel := s.cancel
	s.runMu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()
}
