package control

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc/codes"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/atomicfile"
	"github.com/meshgate/meshgate/internal/control/store"
	"github.com/meshgate/meshgate/internal/control/token"
	"github.com/meshgate/meshgate/internal/identity"
	"github.com/meshgate/meshgate/internal/wait"
)

// caKey is where the CA's state lives in the store, shared by every replica.
const caKey = "ca"

// Files the control plane writes into its data directory.
const (
	// BundleFile is the PEM trust bundle proxies start from (--control-ca).
	BundleFile = "bundle.pem"
	// JoinTokenFile holds the join token created on first start, granting every identity.
	JoinTokenFile = "join-token"
)

func (s *Server) caOptions() identity.CAOptions {
	return identity.CAOptions{
		TrustDomain: s.opts.TrustDomain,
		CertTTL:     s.opts.CertTTL,
		MinTTL:      s.opts.MinCertTTL,
		MaxTTL:      s.opts.MaxCertTTL,
		Propagation: s.opts.RootPropagation,
		Now:         s.opts.Now,
	}
}

// loadCA loads the CA shared in the store, or creates it: a generated root, or the operator's
// intermediate. Replicas racing to create it agree on the first one stored.
func (s *Server) loadCA(ctx context.Context) error {
	data, err := s.store.GetKey(ctx, caKey)
	switch {
	case err == nil && s.opts.Intermediate == nil:
		return s.installCA(data)
	case err == nil || errors.Is(err, store.ErrNotFound):
	default:
		return fmt.Errorf("control: read the CA: %w", err)
	}
	var ca *identity.CA
	if f := s.opts.Intermediate; f != nil {
		ca, err = loadIntermediate(f, s.caOptions())
	} else {
		ca, err = identity.NewRootCA(s.caOptions())
	}
	if err != nil {
		return fmt.Errorf("control: CA: %w", err)
	}
	fresh, err := ca.Marshal()
	if err != nil {
		return fmt.Errorf("control: CA: %w", err)
	}
	ifAbsent := s.opts.Intermediate == nil
	if err := s.store.PutKey(ctx, caKey, fresh, ifAbsent); errors.Is(err, store.ErrExists) {
		if data, err = s.store.GetKey(ctx, caKey); err != nil {
			return fmt.Errorf("control: read the CA: %w", err)
		}
		return s.installCA(data)
	} else if err != nil {
		return fmt.Errorf("control: store the CA: %w", err)
	}
	if s.opts.Intermediate != nil {
		s.log.Info("control: CA signs with the supplied intermediate", "cert", s.opts.Intermediate.Cert)
	} else {
		s.log.Info("control: generated a new root CA", "trust_domain", s.opts.TrustDomain)
	}
	return s.installCA(fresh)
}

func loadIntermediate(f *IntermediateFiles, o identity.CAOptions) (*identity.CA, error) {
	read := func(p string) ([]byte, error) {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("intermediate CA: %w", err)
		}
		return b, nil
	}
	cert, err := read(f.Cert)
	if err != nil {
		return nil, err
	}
	key, err := read(f.Key)
	if err != nil {
		return nil, err
	}
	chain, err := read(f.Chain)
	if err != nil {
		return nil, err
	}
	return identity.NewIntermediateCA(cert, key, chain, o)
}

// installCA makes data the CA in use, when it differs from the one in use, and reports whether
// it did.
func (s *Server) installCA(data []byte) error {
	s.caMu.Lock()
	defer s.caMu.Unlock()
	if bytes.Equal(data, s.caData) {
		return nil
	}
	ca, err := identity.LoadCA(data, s.caOptions())
	if err != nil {
		return fmt.Errorf("control: stored CA: %w", err)
	}
	s.caCur, s.caData = ca, data
	pool := x509.NewCertPool()
	roots := ca.Bundle()
	for _, r := range roots {
		pool.AddCert(r)
	}
	s.pool.Store(pool)
	s.serving.Store(nil) // reissue under the new signer
	s.metrics.bundleRoots.Set(float64(len(roots)))
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return nil
}

// ca returns the CA in use.
func (s *Server) ca() *identity.CA {
	s.caMu.RLock()
	defer s.caMu.RUnlock()
	return s.caCur
}

func (s *Server) bundlePool() *x509.CertPool { return s.pool.Load() }

// servingCertificate returns the control plane's serving certificate, issued again when it has
// passed half its life or the CA changed.
func (s *Server) servingCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.serving.Load(); c != nil && c.Leaf != nil {
		half := c.Leaf.NotBefore.Add(c.Leaf.NotAfter.Sub(c.Leaf.NotBefore) / 2)
		if s.now().Before(half) {
			return c, nil
		}
	}
	dns, ips := s.servingNames()
	c, err := s.ca().ServingCertificate(dns, ips)
	if err != nil {
		s.log.Error("control: cannot issue the serving certificate", "error", err)
		return nil, err
	}
	if c.Leaf == nil && len(c.Certificate) > 0 {
		c.Leaf, _ = x509.ParseCertificate(c.Certificate[0])
	}
	s.serving.Store(&c)
	return &c, nil
}

func (s *Server) servingNames() ([]string, []net.IP) {
	dns := []string{"localhost"}
	if h, err := os.Hostname(); err == nil {
		dns = append(dns, h)
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if host, _, err := net.SplitHostPort(s.opts.GRPCAddress); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			ips = append(ips, ip)
		}
	}
	for _, n := range s.opts.ServingNames {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, n)
		}
	}
	return dns, ips
}

// writeBootstrapFiles writes the trust bundle proxies start from and, the first time, a join
// token granting every identity (mode 0600), as a one-machine mesh needs nothing else.
func (s *Server) writeBootstrapFiles(ctx context.Context) error {
	if err := s.writeBundleFile(); err != nil {
		return err
	}
	p := filepath.Join(s.opts.DataDir, JoinTokenFile)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	tok, rec, err := s.tokens.Create(ctx, token.Grant{Namespace: "*", Service: "*"}, 0, "bootstrap token written to the data directory")
	if err != nil {
		return fmt.Errorf("control: bootstrap join token: %w", err)
	}
	if err := atomicfile.Write(p, []byte(tok+"\n"), 0o600); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	s.log.Info("control: wrote a join token granting every identity", "file", p, "token_id", rec.ID)
	return nil
}

func (s *Server) writeBundleFile() error {
	if err := atomicfile.Write(filepath.Join(s.opts.DataDir, BundleFile), s.ca().BundlePEM(), 0o644); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	return nil
}

// leaderLoop campaigns for leadership; the leader advances root rotations and stores the result.
// Every replica re-reads the stored CA, so all sign with the same key and serve the same bundle.
func (s *Server) leaderLoop(ctx context.Context) {
	go func() {
		for ctx.Err() == nil {
			lost, err := s.store.Campaign(ctx, s.opts.ReplicaID)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("control: leader election failed; retrying", "error", err)
					wait.Sleep(ctx, 2*time.Second)
				}
				continue
			}
			s.isLeader.Store(true)
			s.metrics.leader.Set(1)
			s.log.Info("control: this replica leads", "replica", s.opts.ReplicaID)
			select {
			case <-lost:
				s.log.Warn("control: leadership lost", "replica", s.opts.ReplicaID)
			case <-ctx.Done():
			}
			s.isLeader.Store(false)
			s.metrics.leader.Set(0)
		}
	}()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.caTick(ctx)
	}
}

// caTick reloads the stored CA and, on the leader, advances a root rotation.
func (s *Server) caTick(ctx context.Context) {
	if data, err := s.store.GetKey(ctx, caKey); err == nil {
		if err := s.installCA(data); err != nil {
			s.log.Error("control: stored CA refused", "error", err)
		}
	}
	if !s.isLeader.Load() {
		return
	}
	s.caMu.Lock()
	ca := s.caCur
	changed, err := ca.Advance()
	var data []byte
	if err == nil && changed {
		data, err = ca.Marshal()
	}
	s.caMu.Unlock()
	if err != nil {
		s.log.Error("control: CA rotation step failed", "error", err)
		return
	}
	if changed {
		if err := s.store.PutKey(ctx, caKey, data, false); err != nil {
			s.log.Error("control: cannot store the rotated CA", "error", err)
			return
		}
		s.log.Info("control: root rotation advanced", "phase", fmt.Sprint(ca.Rotation()))
		_ = s.installCA(data)
	}
}

// RotateRoot begins a root rotation: a new root joins the bundle now, signs after the
// propagation time, and the old root leaves the bundle when the last certificate it signed has
// expired.
func (s *Server) RotateRoot(ctx context.Context) error {
	s.caMu.Lock()
	data := bytes.Clone(s.caData)
	s.caMu.Unlock()
	ca, err := identity.LoadCA(data, s.caOptions())
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if err := ca.BeginRootRotation(); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	next, err := ca.Marshal()
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if err := s.store.PutKey(ctx, caKey, next, false); err != nil {
		return fmt.Errorf("control: store the CA: %w", err)
	}
	s.log.Info("control: root rotation begun")
	return s.installCA(next)
}

// authorizeNode lets a proxy subscribe only as the identity of its certificate: a sidecar for
// its own service, a gateway under its own name.
func (s *Server) authorizeNode(ctx context.Context, n *controlv1.Node) error {
	c, err := s.peerCaller(ctx)
	if err != nil {
		return s.refuse(ctx, "Stream", err)
	}
	if n.GetService() != c.service || n.GetNamespace() != c.namespace {
		return s.refuse(ctx, "Stream", &authError{authIdentityMismatch, codes.PermissionDenied,
			fmt.Sprintf("identity %s may subscribe only as service %q in namespace %q, not %q in %q",
				c.id, c.service, c.namespace, n.GetService(), n.GetNamespace())})
	}
	return nil
}
