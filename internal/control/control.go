// Package control is meshgate's control plane (`meshgate control`): the workload registry, the
// versioned config store, the CA that certifies workload identities, the push of each proxy's
// scoped config (meshgate's own protocol, with ACK/NACK) and the same state over xDS for Envoy and
// proxyless gRPC clients, plus an admin API for the CLI.
//
// Proxies reach it over gRPC with TLS: the control plane's serving certificate chains to the
// mesh's trust bundle (written to DATA-DIR/bundle.pem for proxies to start from). A proxy's first
// call, Identity.Sign, carries a join token; every later call is authenticated by the workload
// certificate it obtained.
package control

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/control/push"
	"github.com/meshgate/meshgate/internal/control/state"
	"github.com/meshgate/meshgate/internal/control/store"
	"github.com/meshgate/meshgate/internal/control/telemetry"
	"github.com/meshgate/meshgate/internal/control/token"
	"github.com/meshgate/meshgate/internal/control/xds"
	"github.com/meshgate/meshgate/internal/identity"
	"github.com/meshgate/meshgate/internal/netaddr"
)

// Options configure a control plane. Zero values take the documented defaults.
type Options struct {
	// Store keeps the config, the registry and the CA. Required.
	Store store.Store
	// DataDir is where the control plane writes bundle.pem and, on first start, join-token.
	// Required.
	DataDir string
	// TrustDomain is the mesh's SPIFFE trust domain. Default "mesh.local".
	TrustDomain string
	// CertTTL is the default lifetime of workload certificates. Default 24h; at least MinCertTTL.
	CertTTL time.Duration
	// MinCertTTL and MaxCertTTL bound the lifetime a proxy may ask for. Defaults 1m and 7 days.
	// After a root rotation starts signing, the old root stays trusted for MaxCertTTL.
	MinCertTTL, MaxCertTTL time.Duration
	// RootPropagation is how long a new root is only distributed, during a root rotation, before
	// it signs. Default 1m.
	RootPropagation time.Duration
	// WorkloadTTL is how long a registration lives without a heartbeat. Default 30s.
	WorkloadTTL time.Duration
	// GRPCAddress is where proxies connect (TLS). Default "127.0.0.1:15012".
	GRPCAddress string
	// XDSAddress serves xDS (plaintext) to Envoy and proxyless gRPC clients, or "off". Default
	// "127.0.0.1:15010".
	XDSAddress string
	// AdminAddress serves the admin API the CLI uses. Default "127.0.0.1:15000" (loopback only).
	AdminAddress string
	// AdminToken, when set, is the bearer token every admin request but /live and /ready must
	// send. Required for an admin address that is not loopback.
	AdminToken string
	// Intermediate, when set, makes the CA sign with an operator-supplied intermediate instead of
	// a generated root.
	Intermediate *IntermediateFiles
	// ServingNames are extra DNS names and IPs in the control plane's serving certificate.
	// Default: "localhost", the host name and 127.0.0.1 (plus the listen address's IP).
	ServingNames []string
	// ReplicaID names this replica in leader election and status. Default: host name and pid.
	ReplicaID string
	// Pprof serves Go's /debug/pprof handlers on the admin API. Default false.
	Pprof bool
	// PushDebounce is how long the push waits for changes to settle. Default 100ms.
	PushDebounce time.Duration
	// Metrics is the registry the control plane's collectors go on; default a new one.
	Metrics *prometheus.Registry
	// Log receives the control plane's logs. Default slog.Default().
	Log *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// IntermediateFiles are the PEM files of an operator-supplied intermediate CA.
type IntermediateFiles struct {
	// Cert is the intermediate's certificate.
	Cert string
	// Key is its private key.
	Key string
	// Chain is the chain from the intermediate up to and including the root.
	Chain string
}

// Server is a running control plane.
type Server struct {
	opts        Options
	log         *slog.Logger
	store       store.Store
	tokens      *token.Tokens
	trustDomain spiffeid.TrustDomain
	metrics     *controlMetrics

	caMu   sync.RWMutex
	caCur  *identity.CA
	caData []byte
	pool   atomic.Pointer[x509.CertPool]

	serving atomic.Pointer[tls.Certificate]

	push *push.Server
	xds  *xds.Server

	grpc    *grpc.Server
	xdsGRPC *grpc.Server
	admin   *http.Server
	grpcLn  net.Listener
	xdsLn   net.Listener
	adminLn net.Listener
	changed chan struct{} // CA, bundle or revocations changed: rebuild the state
	// edgeKey signs the edge context (pushed to every proxy).
	edgeKey []byte
	// telemetry receives the proxies' counters and answers taps and look-ups.
	telemetry *telemetry.Server
	// revocations are the revoked identities as of the last state built.
	revocations atomic.Pointer[[]state.Revocation]
	state       stateHolder
	isLeader    atomic.Bool
	ready       atomic.Bool

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New checks opts, loads or creates the CA and binds the listeners. Start serves.
func New(opts Options) (*Server, error) {
	if err := defaults(&opts); err != nil {
		return nil, err
	}
	td, err := spiffeid.TrustDomainFromString(opts.TrustDomain)
	if err != nil {
		return nil, fmt.Errorf("control: trust domain %q: %w", opts.TrustDomain, err)
	}
	s := &Server{
		opts: opts, log: opts.Log, store: opts.Store, trustDomain: td,
		tokens:  &token.Tokens{Store: opts.Store, Now: opts.Now},
		changed: make(chan struct{}, 1),
	}
	s.metrics = newControlMetrics(opts.Metrics)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.loadCA(ctx); err != nil {
		return nil, err
	}
	if err := s.writeBootstrapFiles(ctx); err != nil {
		return nil, err
	}
	if err := s.loadEdgeKey(ctx); err != nil {
		return nil, err
	}
	s.push = push.NewServer(push.ServerOptions{
		Log: s.log.With("component", "push"), Registerer: s.metrics.reg, Debounce: opts.PushDebounce,
		Authorize: s.authorizeNode,
	})
	s.xds = xds.New(xds.Options{Log: s.log.With("component", "xds"), Registerer: s.metrics.reg})
	s.telemetry = telemetry.New(telemetry.Options{Authenticate: s.telemetryCaller, Log: s.log.With("component", "telemetry"), Now: opts.Now})
	if err := s.listen(); err != nil {
		s.closeListeners()
		return nil, err
	}
	return s, nil
}

func defaults(o *Options) error {
	if o.Store == nil {
		return errors.New("control: a store is required")
	}
	if o.DataDir == "" {
		return errors.New("control: a data directory is required")
	}
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set(&o.TrustDomain, "mesh.local")
	set(&o.GRPCAddress, "127.0.0.1:15012")
	set(&o.XDSAddress, "127.0.0.1:15010")
	set(&o.AdminAddress, "127.0.0.1:15000")
	if o.CertTTL == 0 {
		o.CertTTL = 24 * time.Hour
	}
	if o.MinCertTTL == 0 {
		o.MinCertTTL = time.Minute
	}
	if o.MaxCertTTL == 0 {
		o.MaxCertTTL = max(7*24*time.Hour, o.CertTTL)
	}
	if o.CertTTL < o.MinCertTTL || o.CertTTL > o.MaxCertTTL {
		return fmt.Errorf("control: certificate TTL %s is outside %s..%s", o.CertTTL, o.MinCertTTL, o.MaxCertTTL)
	}
	if o.RootPropagation == 0 {
		o.RootPropagation = time.Minute
	}
	if o.WorkloadTTL == 0 {
		o.WorkloadTTL = 30 * time.Second
	}
	if o.WorkloadTTL < 3*time.Second {
		return fmt.Errorf("control: workload TTL %s is shorter than the minimum of 3s", o.WorkloadTTL)
	}
	if o.ReplicaID == "" {
		h, _ := os.Hostname()
		o.ReplicaID = fmt.Sprintf("%s-%d", h, os.Getpid())
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AdminAddress != "off" && o.AdminToken == "" && !netaddr.IsLoopbackAddr(o.AdminAddress) {
		return fmt.Errorf("control: admin address %s is not loopback: set an admin token", o.AdminAddress)
	}
	return os.MkdirAll(o.DataDir, 0o700)
}

func (s *Server) now() time.Time { return s.opts.Now() }

// Registry is the Prometheus registry the admin API serves on /metrics.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }

// GRPCAddr is the address proxies connect to.
func (s *Server) GRPCAddr() net.Addr { return s.grpcLn.Addr() }

// XDSAddr is the xDS address, or nil when xDS is off.
func (s *Server) XDSAddr() net.Addr {
	if s.xdsLn == nil {
		return nil
	}
	return s.xdsLn.Addr()
}

// AdminAddr is the admin API's address, or nil when it is off.
func (s *Server) AdminAddr() net.Addr {
	if s.adminLn == nil {
		return nil
	}
	return s.adminLn.Addr()
}

// listen binds the gRPC, xDS and admin sockets.
func (s *Server) listen() error {
	var err error
	if s.grpcLn, err = net.Listen("tcp", s.opts.GRPCAddress); err != nil {
		return fmt.Errorf("control: listen %s: %w", s.opts.GRPCAddress, err)
	}
	if s.opts.XDSAddress != "off" {
		if s.xdsLn, err = net.Listen("tcp", s.opts.XDSAddress); err != nil {
			return fmt.Errorf("control: xDS listen %s: %w", s.opts.XDSAddress, err)
		}
	}
	if s.opts.AdminAddress != "off" {
		if s.adminLn, err = net.Listen("tcp", s.opts.AdminAddress); err != nil {
			return fmt.Errorf("control: admin listen %s: %w", s.opts.AdminAddress, err)
		}
	}
	return nil
}

func (s *Server) closeListeners() {
	for _, ln := range []net.Listener{s.grpcLn, s.xdsLn, s.adminLn} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// grpcServerOptions are the limits every control-plane gRPC server runs with.
func grpcServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(4 << 20),
		grpc.MaxConcurrentStreams(1000),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.ConnectionTimeout(10 * time.Second),
	}
}

// Start serves until Close: gRPC (identity, registry, push), xDS, the admin API, the state loop
// and the leader's CA duties.
func (s *Server) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel

	tc := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		ClientAuth:     tls.RequestClientCert, // verified per call against the current bundle
		GetCertificate: s.servingCertificate,
		NextProtos:     []string{"h2"},
	}
	s.grpc = grpc.NewServer(append(grpcServerOptions(), grpc.Creds(credentials.NewTLS(tc)))...)
	controlv1.RegisterIdentityServer(s.grpc, identityService{s: s})
	controlv1.RegisterRegistryServer(s.grpc, registryService{s: s})
	controlv1.RegisterTelemetryServer(s.grpc, s.telemetry)
	s.push.Register(s.grpc)
	s.goRun(func() { _ = s.grpc.Serve(s.grpcLn) })
	if s.xdsLn != nil {
		s.xdsGRPC = grpc.NewServer(grpcServerOptions()...)
		s.xds.Register(s.xdsGRPC)
		s.goRun(func() { _ = s.xdsGRPC.Serve(s.xdsLn) })
	}
	if s.adminLn != nil {
		s.admin = &http.Server{
			Handler:           s.adminHandler(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       time.Minute,
			WriteTimeout:      time.Minute,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
		}
		s.goRun(func() { _ = s.admin.Serve(s.adminLn) })
	}
	s.goRun(func() { s.stateLoop(ctx) })
	s.goRun(func() { s.leaderLoop(ctx) })
	s.log.Info("control plane serving", "grpc", s.grpcLn.Addr().String(), "xds", addrString(s.xdsLn),
		"admin", addrString(s.adminLn), "trust_domain", s.trustDomain.String(), "replica", s.opts.ReplicaID)
}

func (s *Server) goRun(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Close stops serving: streams end (proxies keep their last config), listeners close. Closing
// again does nothing.
func (s *Server) Close() error {
	s.closeOnce.Do(s.close)
	return nil
}

func (s *Server) close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.push.Close()
	if s.grpc != nil {
		stopWithin(s.grpc, 5*time.Second)
	}
	if s.xdsGRPC != nil {
		stopWithin(s.xdsGRPC, 5*time.Second)
	}
	if s.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.admin.Shutdown(ctx)
		cancel()
	}
	s.closeListeners()
	s.wg.Wait()
}

// stopWithin stops g gracefully, or at once after d.
func stopWithin(g *grpc.Server, d time.Duration) {
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		g.Stop()
		<-done
	}
}

func addrString(ln net.Listener) string {
	if ln == nil {
		return "off"
	}
	return ln.Addr().String()
}
