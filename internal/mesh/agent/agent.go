// Package agent is a proxy's side of the control plane: it obtains and renews the proxy's
// workload certificate (CSR flow: the key never leaves the proxy), keeps the control plane's
// trust bundle, optionally registers a workload and heartbeats it, and subscribes to the proxy's
// config, applying each version and keeping the last good one on disk so the proxy starts and
// serves without the control plane (static stability).
package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/atomicfile"
	"github.com/meshgate/meshgate/internal/control/push"
	"github.com/meshgate/meshgate/internal/control/state"
	"github.com/meshgate/meshgate/internal/identity"
	"github.com/meshgate/meshgate/internal/observe/record"
	"github.com/meshgate/meshgate/internal/wait"
)

// Options configure an agent.
type Options struct {
	// ControlAddress is the control plane's gRPC host:port. Required.
	ControlAddress string
	// ControlCA is a PEM file of the trust bundle to verify the control plane with on first
	// contact (the control plane writes it to its data directory as bundle.pem). Later bundles
	// come from the control plane and are kept in DataDir.
	ControlCA string
	// JoinToken is presented to obtain the first certificate (and again when the certificate has
	// expired while the control plane was unreachable).
	JoinToken string
	// DataDir keeps the key, certificate, bundle and last good config. Required.
	DataDir string
	// TrustDomain is the mesh's trust domain. Default "mesh.local".
	TrustDomain string
	// Node describes the proxy (role, service, namespace, id).
	Node *controlv1.Node
	// Workload, when set, is registered and heartbeated from the start. A sidecar registers its
	// workload later instead, with Register, once it is ready for traffic.
	Workload *controlv1.Workload
	// OnIdentity, when set, is called with the proxy's certificate source before any config is
	// applied (the engine dials mesh peers with it).
	OnIdentity func(*identity.Source)
	// Records, when set, are reported to the control plane (edge counters) and answer its taps
	// and lookups.
	Records *record.Hub
	// Registerer, when set, receives the certificate source's metrics (expiry, renewals).
	Registerer prometheus.Registerer
	// CertTTL is the certificate lifetime asked for; zero takes the control plane's default.
	CertTTL time.Duration
	// Apply runs a new config; an error refuses it (NACK) and the previous one keeps running.
	Apply func(*push.Snapshot) error
	// Log receives the agent's logs.
	Log *slog.Logger
}

// Agent connects one proxy to the control plane.
type Agent struct {
	opts   Options
	log    *slog.Logger
	id     spiffeid.ID
	source *identity.Source
	pool   atomic.Pointer[x509.CertPool]

	mu     sync.Mutex
	conn   *grpc.ClientConn
	client *push.Client
	cancel context.CancelFunc // of the current push client
	wg     sync.WaitGroup
	ready  chan struct{}
	once   sync.Once

	// The registered workload: set once by Register; health changes poke the heartbeat.
	workload  atomic.Pointer[controlv1.Workload]
	health    atomic.Value // string
	registers chan struct{}
	poke      chan struct{}
}

// New checks opts. Start connects.
func New(opts Options) (*Agent, error) {
	if opts.ControlAddress == "" || opts.DataDir == "" || opts.Node == nil || opts.Apply == nil {
		return nil, errors.New("agent: control address, data directory, node and apply are required")
	}
	if opts.TrustDomain == "" {
		opts.TrustDomain = "mesh.local"
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	td, err := spiffeid.TrustDomainFromString(opts.TrustDomain)
	if err != nil {
		return nil, fmt.Errorf("agent: trust domain: %w", err)
	}
	id, err := identity.WorkloadID(td, opts.Node.GetNamespace(), opts.Node.GetService())
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a := &Agent{opts: opts, log: opts.Log, id: id, ready: make(chan struct{}),
		registers: make(chan struct{}), poke: make(chan struct{}, 1)}
	if opts.Workload != nil {
		a.Register(opts.Workload)
	}
	return a, nil
}

// ID is the proxy's workload identity.
func (a *Agent) ID() spiffeid.ID { return a.id }

// Source is the proxy's certificate source (for mTLS between proxies); nil before Start.
func (a *Agent) Source() *identity.Source { return a.source }

// Ready is closed once a config has been applied, from the control plane or the disk cache.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

func (a *Agent) cacheFile() string  { return filepath.Join(a.opts.DataDir, "config.snapshot") }
func (a *Agent) bundleFile() string { return filepath.Join(a.opts.DataDir, "bundle.pem") }

// Start applies the cached config, if any, at once, then obtains the certificate and subscribes
// in the background until ctx ends. It fails only when there is neither a cached config nor a
// trust bundle to reach the control plane with.
func (a *Agent) Start(ctx context.Context) error {
	if err := a.loadBundle(); err != nil {
		return err
	}
	src, err := identity.NewSource(identity.SourceOptions{
		ID: a.id, Dir: filepath.Join(a.opts.DataDir, "identity"), Sign: a.sign, TTL: a.opts.CertTTL,
		Log: a.log.With("component", "identity"), Registerer: a.opts.Registerer,
	})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a.source = src
	if a.opts.OnIdentity != nil {
		a.opts.OnIdentity(src)
	}
	cached := push.NewClient(push.ClientOptions{Node: a.opts.Node, CacheFile: a.cacheFile(), Log: a.log})
	if snap, err := cached.LoadCache(); err == nil && snap != nil {
		if err := a.apply(snap); err != nil {
			a.log.Error("agent: the cached config was refused", "version", snap.Version, "error", err)
		} else {
			a.log.Info("agent: serving the cached config until the control plane answers", "version", snap.Version)
		}
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		a.log.Warn("agent: cached config unusable; waiting for the control plane", "error", err)
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.run(ctx)
	}()
	return nil
}

// run obtains the certificate (retrying while the control plane is unreachable), then keeps a
// connection with the current certificate, re-dialled after every renewal.
func (a *Agent) run(ctx context.Context) {
	for backoff := 500 * time.Millisecond; ; backoff = min(backoff*2, 30*time.Second) {
		err := a.source.Start(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		a.log.Warn("agent: no workload certificate yet; retrying", "error", err, "in", backoff)
		if !wait.Sleep(ctx, backoff) {
			return
		}
	}
	defer a.source.Close()
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		a.heartbeat(ctx)
	}()
	renewed := a.source.Updated()
	for {
		if err := a.connect(ctx); err != nil {
			a.log.Error("agent: cannot connect to the control plane", "error", err)
		}
		select {
		case <-ctx.Done():
			<-hbDone // deregistered while the connection is still up
			a.disconnect()
			return
		case <-renewed:
			a.log.Info("agent: certificate renewed; reconnecting with it", "expires", a.source.Expiry())
		}
	}
}

// connect dials the control plane with the current certificate and restarts the subscription
// on the new connection (resuming from the versions held).
func (a *Agent) connect(ctx context.Context) error {
	conn, err := a.dial(true)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithCancel(ctx)
	c := push.NewClient(push.ClientOptions{
		Node: a.opts.Node, Conn: conn, Apply: a.apply, CacheFile: a.cacheFile(), Log: a.log.With("component", "config"),
	})
	a.mu.Lock()
	oldConn, oldCancel := a.conn, a.cancel
	a.conn, a.client, a.cancel = conn, c, cancel
	a.mu.Unlock()
	if oldCancel != nil {
		oldCancel()
	}
	if oldConn != nil {
		_ = oldConn.Close()
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		_ = c.Run(pctx)
	}()
	if a.opts.Records != nil {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.telemetry(pctx, conn)
		}()
	}
	return nil
}

func (a *Agent) disconnect() {
	a.mu.Lock()
	conn, cancel := a.conn, a.cancel
	a.conn, a.cancel = nil, nil
	a.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if conn != nil {
		_ = conn.Close()
	}
}

// Wait waits for the agent's goroutines after its context ended.
func (a *Agent) Wait() { a.wg.Wait() }

// Connected reports whether the config stream is up.
func (a *Agent) Connected() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.client != nil && a.client.Connected()
}

// apply runs a snapshot and takes its trust bundle.
func (a *Agent) apply(s *push.Snapshot) error {
	if err := a.opts.Apply(s); err != nil {
		return err
	}
	if b := s.Bundle(); len(b) > 0 {
		if err := a.setBundle(b); err != nil {
			a.log.Error("agent: pushed trust bundle refused", "error", err)
		}
	}
	if revs, err := s.Revocations(); err == nil && a.source != nil {
		if r, ok := state.Revoked(revs, a.id.String(), a.source.NotBefore()); ok {
			// Peers refuse the current certificate from now on: get a new one at once.
			a.log.Warn("agent: this proxy's certificate was revoked; renewing", "at", r.Before, "reason", r.Reason)
			a.source.RenewNow()
		}
	}
	a.once.Do(func() { close(a.ready) })
	return nil
}

// dial opens a TLS connection to the control plane, verified against the trust bundle (the
// control plane's identity is spiffe://TD/ns/meshgate-system/sa/control); withCert presents the
// workload certificate.
func (a *Agent) dial(withCert bool) (*grpc.ClientConn, error) {
	want, err := spiffeid.FromSegments(a.id.TrustDomain(), "ns", "meshgate-system", "sa", "control")
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // verified in VerifyConnection against the current bundle and ID
		VerifyConnection:   func(cs tls.ConnectionState) error { return a.verifyControl(cs, want) },
	}
	if withCert {
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return a.source.TLSCertificate()
		}
	}
	return grpc.NewClient(a.opts.ControlAddress,
		grpc.WithTransportCredentials(credentials.NewTLS(tc)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
	)
}

func (a *Agent) verifyControl(cs tls.ConnectionState, want spiffeid.ID) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("agent: the control plane sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots: a.pool.Load(), Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return fmt.Errorf("agent: the control plane's certificate does not verify against the trust bundle: %w", err)
	}
	got, err := identity.PeerID(cs)
	if err != nil || got != want {
		return fmt.Errorf("agent: the control plane presented identity %v, want %s", got, want)
	}
	return nil
}

// sign is the Source's signer: the CSR goes to Identity.Sign over a connection that presents
// the current certificate while it is valid, or with the join token otherwise.
func (a *Agent) sign(ctx context.Context, csr []byte) ([][]byte, [][]byte, error) {
	valid := a.source != nil && a.source.Expiry().After(time.Now().Add(10*time.Second))
	conn, err := a.dial(valid)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	if !valid {
		if a.opts.JoinToken == "" {
			return nil, nil, errors.New("agent: no valid certificate and no join token")
		}
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+a.opts.JoinToken)
	}
	req := &controlv1.SignRequest{Csr: csr}
	if a.opts.CertTTL > 0 {
		req.Ttl = durationpb.New(a.opts.CertTTL)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := controlv1.NewIdentityClient(conn).Sign(ctx, req)
	if err != nil && valid && a.opts.JoinToken != "" && status.Code(err) == codes.PermissionDenied {
		// The certificate was revoked (or no longer grants this identity): start over with the
		// join token, as a new proxy would.
		a.log.Warn("agent: the control plane refused the current certificate; asking with the join token", "error", err)
		tconn, derr := a.dial(false)
		if derr != nil {
			return nil, nil, derr
		}
		defer tconn.Close()
		tctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+a.opts.JoinToken)
		resp, err = controlv1.NewIdentityClient(tconn).Sign(tctx, req)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("agent: sign: %w", err)
	}
	return resp.GetCertificateChain(), resp.GetTrustBundle(), nil
}

// loadBundle reads the newest trust bundle: the one kept in DataDir, else ControlCA.
func (a *Agent) loadBundle() error {
	for _, p := range []string{a.bundleFile(), a.opts.ControlCA} {
		if p == "" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return fmt.Errorf("agent: %s holds no PEM certificate", p)
		}
		a.pool.Store(pool)
		return nil
	}
	return fmt.Errorf("agent: no trust bundle: give the control plane's bundle.pem (--control-ca)")
}

// setBundle takes a bundle pushed by the control plane: for verifying the control plane and
// peers, and kept on disk for the next start.
func (a *Agent) setBundle(pemBytes []byte) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return errors.New("agent: the bundle holds no PEM certificate")
	}
	a.pool.Store(pool)
	if a.source != nil {
		if err := a.source.SetBundle(pemBytes); err != nil {
			return err
		}
	}
	return atomicfile.Write(a.bundleFile(), pemBytes, 0o644)
}
