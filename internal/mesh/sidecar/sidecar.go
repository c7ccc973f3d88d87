package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/control/push"
	"github.com/meshgate/meshgate/internal/gateway"
	"github.com/meshgate/meshgate/internal/identity"
	"github.com/meshgate/meshgate/internal/mesh/agent"
	"github.com/meshgate/meshgate/internal/mesh/edgectx"
	"github.com/meshgate/meshgate/internal/mesh/mtls"
	obsmetrics "github.com/meshgate/meshgate/internal/observe/metrics"
)

// Control is how the sidecar reaches the control plane.
type Control struct {
	// Address is the control plane's gRPC host:port. Required.
	Address string
	// CA is the trust bundle file to verify the control plane with on first contact.
	CA string
	// JoinToken obtains the first certificate.
	JoinToken string
	// DataDir keeps the key, certificate, bundle and last good config. Required.
	DataDir string
	// TrustDomain is the mesh's trust domain. Default "mesh.local".
	TrustDomain string
	// CertTTL is the certificate lifetime asked for; zero takes the control plane's default.
	CertTTL time.Duration
}

// Sidecar is one running sidecar.
type Sidecar struct {
	opts    Options
	control Control
	log     *slog.Logger
	gw      *gateway.Gateway
	m       *metrics
	agent   *agent.Agent

	plan     atomic.Pointer[plan]
	revoked  mtls.Revocations // the identities the control plane revoked
	edgeKey  edgectx.Key      // verifies the edge context
	acceptor atomic.Pointer[mtls.Acceptor]
	source   atomic.Pointer[identity.Source]

	vmu      sync.Mutex
	virtuals map[string]*connListener

	fronts    []net.Listener
	inbound   net.Listener
	upstreams map[string]net.Listener
	draining  atomic.Bool
	ready     chan struct{}
	// OnPlan, when set, is called with the mesh services of every config applied (their keys,
	// "SERVICE.NAMESPACE"), before the config serves: transparent mode gives them virtual IPs.
	onTargets func([]string)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stop   sync.Once
}

// New checks the options and prepares a sidecar; Start runs it. reg is the metrics registry the
// engine and the sidecar count in. onTargets may be nil.
func New(opts Options, control Control, reg *obsmetrics.Registry, onTargets func([]string)) (*Sidecar, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if control.Address == "" || control.DataDir == "" {
		return nil, errors.New("sidecar: the control plane address and a data directory are required")
	}
	m, err := newMetrics(reg.Prom)
	if err != nil {
		return nil, err
	}
	s := &Sidecar{opts: opts, control: control, log: opts.Log, gw: gateway.New(opts.Log, reg), m: m,
		virtuals: map[string]*connListener{}, ready: make(chan struct{}), onTargets: onTargets}
	s.gw.SetListen(s.listen)
	s.gw.Engine().SetEdgeKey(&s.edgeKey)
	return s, nil
}

// direction tells the direction of a request by the engine listener it arrived on.
func direction(listener string) string {
	if strings.HasPrefix(listener, inboundPrefix) {
		return "inbound"
	}
	return "outbound"
}

// Gateway is the sidecar's engine host (for the admin API).
func (s *Sidecar) Gateway() *gateway.Gateway { return s.gw }

// Ready is closed once the sidecar has a config and a certificate and its workload is
// registered: from then on the workload's calls work and peers may call it.
func (s *Sidecar) Ready() <-chan struct{} { return s.ready }

// ReadyErr says why the sidecar is not ready for traffic, or nil (the admin API's /ready).
func (s *Sidecar) ReadyErr() error {
	if s.draining.Load() {
		return errors.New("draining")
	}
	select {
	case <-s.ready:
		return nil
	default:
	}
	if s.plan.Load() == nil {
		return errors.New("waiting for config from the control plane")
	}
	return errors.New("waiting for a workload certificate")
}

// InboundAddr is the inbound front's bound address.
func (s *Sidecar) InboundAddr() net.Addr { return s.inbound.Addr() }

// OutboundAddr is the outbound front's bound address.
func (s *Sidecar) OutboundAddr() net.Addr { return s.fronts[1].Addr() }

// UpstreamAddr is the bound address of the port bound to service name, or nil.
func (s *Sidecar) UpstreamAddr(name string) net.Addr {
	if ln := s.upstreams[name]; ln != nil {
		return ln.Addr()
	}
	return nil
}

// Start binds the fronts, starts from the last good config if there is one, and connects to
// the control plane in the background. The workload is registered once the sidecar is ready.
func (s *Sidecar) Start(ctx context.Context) error {
	s.ctx, s.cancel = context.WithCancel(context.Background())
	bind := func(addr string) (net.Listener, error) {
		lc := net.ListenConfig{KeepAlive: -1}
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		s.fronts = append(s.fronts, ln)
		return ln, nil
	}
	fail := func(err error) error {
		for _, ln := range s.fronts {
			_ = ln.Close()
		}
		s.cancel()
		return err
	}
	in, err := bind(s.opts.Inbound)
	if err != nil {
		return fail(fmt.Errorf("sidecar: inbound: %w", err))
	}
	s.inbound = in
	out, err := bind(s.opts.Outbound)
	if err != nil {
		return fail(fmt.Errorf("sidecar: outbound: %w", err))
	}
	ups := map[string]net.Listener{}
	for name, addr := range s.opts.Upstreams {
		ln, err := bind(addr)
		if err != nil {
			return fail(fmt.Errorf("sidecar: upstream %s: %w", name, err))
		}
		ups[name] = ln
	}
	mm, err := mtls.NewMetrics(s.gw.Metrics().Prom)
	if err != nil {
		return fail(err)
	}
	ag, err := agent.New(agent.Options{
		ControlAddress: s.control.Address, ControlCA: s.control.CA, JoinToken: s.control.JoinToken,
		DataDir: s.control.DataDir, TrustDomain: s.control.TrustDomain, CertTTL: s.control.CertTTL,
		Apply: s.apply, Log: s.log.With("component", "agent"), Records: s.gw.Records(), Registerer: s.gw.Metrics().Prom,
		Node: &controlv1.Node{Id: s.workloadID(), Role: push.RoleSidecar, Service: s.opts.Service,
			Namespace: s.opts.Namespace, Calls: s.opts.Calls},
		OnIdentity: func(src *identity.Source) {
			s.source.Store(src)
			s.gw.Engine().SetMeshDialer(mtls.NewDialer(src, s.opts.Dialer, mm, &s.revoked))
			s.acceptor.Store(mtls.NewAcceptor(src, mm, &s.revoked))
		},
	})
	if err != nil {
		return fail(err)
	}
	s.agent = ag
	s.gw.Describe(s.workloadID(), push.RoleSidecar, s.opts.Service+"."+s.opts.Namespace, direction)
	if err := ag.Start(s.ctx); err != nil {
		return fail(err)
	}
	s.upstreams = ups
	s.wg.Add(2 + len(ups))
	go func() { defer s.wg.Done(); s.serveInbound(in) }()
	go func() { defer s.wg.Done(); s.serveOutbound(out) }()
	for name, ln := range ups {
		go func() { defer s.wg.Done(); s.serveUpstream(ln, name) }()
	}
	go s.becomeReady()
	return nil
}

// becomeReady waits for a config and a certificate, then registers the workload.
func (s *Sidecar) becomeReady() {
	select {
	case <-s.ctx.Done():
		return
	case <-s.agent.Ready():
	}
	src := s.source.Load()
	select {
	case <-s.ctx.Done():
		return
	case <-src.Ready():
	}
	s.agent.Register(s.workload())
	s.m.ready.Set(1)
	close(s.ready)
	s.log.Info("sidecar ready", "service", s.opts.Service, "namespace", s.opts.Namespace,
		"identity", src.ID().String(), "inbound", s.inbound.Addr().String())
}

// apply runs a pushed config; an error refuses it (NACK) and the previous one keeps serving.
func (s *Sidecar) apply(snap *push.Snapshot) error {
	in, err := snap.Config()
	if err != nil {
		return err
	}
	config.ApplyDefaults(in)
	p, err := translate(in, &s.opts)
	if err != nil {
		return err
	}
	p.cfg.Source.File = "<control version " + snap.Version + ">"
	revs, err := snap.Revocations()
	if err != nil {
		return err
	}
	if s.onTargets != nil {
		keys := make([]string, 0, len(p.targets))
		for k := range p.targets {
			keys = append(keys, k)
		}
		s.onTargets(keys)
	}
	if _, err := s.gw.Apply(p.cfg); err != nil {
		return err
	}
	s.plan.Store(p)
	s.revoked.Set(revs)
	s.edgeKey.Set(snap.EdgeKey())
	return nil
}

// Drain reports the workload draining, so callers stop sending new calls, and keeps serving for
// the drain delay while they learn it. The sidecar is not ready from then on.
func (s *Sidecar) Drain(ctx context.Context) {
	if s.draining.Swap(true) {
		return
	}
	s.m.ready.Set(0)
	s.log.Info("sidecar draining", "delay", s.opts.DrainDelay)
	select {
	case <-s.ready:
		s.agent.SetHealth("draining")
	default:
	}
	t := time.NewTimer(s.opts.DrainDelay)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Close stops accepting, lets in-flight requests finish (up to the drain timeout), deregisters
// the workload and disconnects from the control plane.
func (s *Sidecar) Close() error {
	var err error
	s.stop.Do(func() {
		for _, ln := range s.fronts {
			_ = ln.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.DrainTimeout)
		defer cancel()
		err = s.gw.Shutdown(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			err = nil
		}
		s.cancel()
		if s.agent != nil {
			s.agent.Wait()
		}
		// Connections still being handed over or relayed (opaque TCP) get what is left of the
		// drain timeout; a shutdown never waits longer than that.
		done := make(chan struct{})
		go func() {
			s.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			s.log.Warn("sidecar: connections still open at the end of the drain timeout; stopping anyway")
		}
	})
	return err
}

// listen serves the engine's listeners from handed-over connections.
func (s *Sidecar) listen(l *config.Listener) (net.Listener, error) {
	addr := s.inbound.Addr()
	if l.Name == outboundListener || len(l.Name) > len(outboundPrefix) && l.Name[:len(outboundPrefix)] == outboundPrefix {
		addr = s.fronts[1].Addr()
	}
	cl := newConnListener(l.Name, addr)
	s.vmu.Lock()
	s.virtuals[l.Name] = cl
	s.vmu.Unlock()
	return cl, nil
}

// virtual returns the engine listener called name, or nil.
func (s *Sidecar) virtual(name string) *connListener {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	return s.virtuals[name]
}

// workloadID is the workload's registration ID: stable for one host, address and inbound port
// (so a restarted sidecar replaces its own registration).
func (s *Sidecar) workloadID() string {
	host, _ := os.Hostname()
	_, port, _ := net.SplitHostPort(s.inbound.Addr().String())
	return fmt.Sprintf("%s-%s-%s-%s", s.opts.Service, host, s.opts.Addresses[0], port)
}

// workload is the registration of the workload behind this sidecar.
func (s *Sidecar) workload() *controlv1.Workload {
	w := &controlv1.Workload{Id: s.workloadID(), Service: s.opts.Service, Namespace: s.opts.Namespace,
		Addresses: s.opts.Addresses, Health: "healthy"}
	if _, p, err := net.SplitHostPort(s.inbound.Addr().String()); err == nil {
		n, _ := strconv.Atoi(p)
		w.SidecarPort = uint32(n)
	}
	for _, p := range s.opts.Ports {
		w.Ports = append(w.Ports, &controlv1.Port{Name: p.Name, Port: uint32(p.Port), Protocol: p.Protocol})
	}
	return w
}
