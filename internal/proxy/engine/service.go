package engine

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/mesh/edgectx"
	"github.com/meshgate/meshgate/internal/observe/metrics"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/cluster"
	"github.com/meshgate/meshgate/internal/proxy/cluster/adaptive"
	"github.com/meshgate/meshgate/internal/proxy/upstream"
)

// service is a compiled upstream service: its cluster (endpoints, balancer, health) and the
// transport that carries requests to it. It outlives tables while its config is unchanged, or
// changed only in its endpoints (then updated in place, see updateEndpoints).
type service struct {
	name        string
	fingerprint string // cluster.Fingerprint of the config in force; Apply (under Engine.mu) updates it
	settings    string // cluster.SettingsFingerprint of the config
	cluster     *cluster.Cluster
	transport   upstream.Transport
	dial        upstream.DialFunc // mutual TLS to mesh peers; nil for plain TCP
	edge        *edgectx.Key      // signs the edge context of calls from the edge to mesh peers
	hashOn      *config.HashOn
	// adaptive limits the requests in flight by observed latency; nil when not configured.
	adaptive *adaptive.Limiter
	limited  prometheus.Counter // requests the adaptive limit refused
	limit    prometheus.Gauge   // the adaptive limit
	metrics  *metrics.Registry
}

// The HTTP/1 transport's pools enforce a circuit breaker's connection thresholds.
var _ upstream.ConnLimiter = (*cluster.Breaker)(nil)

func newService(svc *config.Service, log *slog.Logger, m *metrics.Registry, md MeshDialer, edge *edgectx.Key) (*service, error) {
	name := svc.Name
	dial, err := meshDial(svc, md)
	if err != nil {
		return nil, err
	}
	cm, err := cluster.NewMetrics(m.Prom)
	if err != nil {
		return nil, err
	}
	cl, err := cluster.New(svc, cluster.Options{
		Logger:  log.With("service", name),
		Metrics: cm,
		OnHealthChange: func(svcName string, ep *cluster.Endpoint, healthy bool) {
			v := 0.0
			if healthy {
				v = 1
			}
			m.EndpointHealthy.WithLabelValues(svcName, ep.Address).Set(v)
			log.Info("endpoint health changed", "service", svcName, "endpoint", ep.Address, "healthy", healthy)
		},
		OnEndpointsChange: func(svcName string, added, removed []*cluster.Endpoint) {
			for _, ep := range removed {
				m.EndpointHealthy.DeleteLabelValues(svcName, ep.Address)
			}
			for _, ep := range added {
				v := 0.0
				if ep.Healthy() {
					v = 1
				}
				m.EndpointHealthy.WithLabelValues(svcName, ep.Address).Set(v)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	for _, ep := range cl.Endpoints() {
		m.EndpointHealthy.WithLabelValues(name, ep.Address).Set(1)
	}
	conns := m.UpstreamConnections.WithLabelValues(name)
	okConnects := m.UpstreamConnects.WithLabelValues(name, "success")
	failedConnects := m.UpstreamConnects.WithLabelValues(name, "failure")
	hooks := upstream.Hooks{
		ConnOpened:    func() { conns.Inc(); okConnects.Inc() },
		ConnClosed:    func() { conns.Dec() },
		ConnectFailed: func() { failedConnects.Inc() },
	}
	var tr upstream.Transport
	switch svc.Protocol {
	case config.UpstreamHTTP2, config.UpstreamGRPC:
		opts := upstream.HTTP2Options{
			ConnectTimeout: svc.Pool.ConnectTimeout, IdleTimeout: svc.Pool.IdleTimeout, Hooks: hooks, Dial: dial,
		}
		if b := cl.Breaker(); b != nil {
			opts.Limiter = b
		}
		tr = upstream.NewHTTP2(opts)
	default:
		opts := upstream.HTTP1Options{
			MaxIdlePerEndpoint: svc.Pool.MaxIdlePerEndpoint, MaxConnsPerEndpoint: svc.Pool.MaxConnsPerEndpoint,
			IdleTimeout: svc.Pool.IdleTimeout, ConnectTimeout: svc.Pool.ConnectTimeout, Hooks: hooks, Dial: dial,
		}
		if b := cl.Breaker(); b != nil {
			opts.Limiter = b // the service's connection and pending-request thresholds
		}
		tr = upstream.NewHTTP1(opts)
	}
	s := &service{name: name, fingerprint: cluster.Fingerprint(svc), settings: cluster.SettingsFingerprint(svc),
		cluster: cl, transport: tr, dial: dial, edge: edge, hashOn: svc.LoadBalancer.Hash, metrics: m}
	if a := svc.AdaptiveConcurrency; a != nil {
		s.adaptive = adaptive.New(adaptive.Options{InitialLimit: a.InitialLimit, MinLimit: a.MinLimit, MaxLimit: a.MaxLimit,
			SampleWindow: a.SampleWindow, Tolerance: a.Tolerance})
		s.limited = m.ConcurrencyLimited.WithLabelValues(name)
		s.limit = m.ConcurrencyLimit.WithLabelValues(name)
		s.limit.Set(float64(s.adaptive.Limit()))
	}
	return s, nil
}

// errConcurrencyLimited is the cause of a 503 from the adaptive concurrency limit.
var errConcurrencyLimited = errors.New("engine: the service's adaptive concurrency limit is reached")

func (s *service) start(ctx context.Context) { s.cluster.Start(ctx) }

func (s *service) close() {
	s.cluster.Close()
	s.transport.Close()
}

// Serve sends x to one endpoint of the service. It implements proxy.Handler.
func (s *service) Serve(x *proxy.Exchange) error {
	_, err := s.serveOnce(x, nil)
	return err
}

// serveOnce sends x to one endpoint, preferring one other than avoid (the endpoint of a failed
// attempt) when the service has another healthy one. It returns the endpoint used.
//
// The service's circuit breaker admits the attempt first (as a retry when x.Attempts is above 1)
// and refuses it at once, with 503 circuit_open, beyond a threshold. The attempt's outcome goes to
// the breaker and to outlier detection.
func (s *service) serveOnce(x *proxy.Exchange, avoid *cluster.Endpoint) (_ *cluster.Endpoint, err error) {
	var localFail bool // the attempt failed locally (timeout, reset): a drop for the adaptive limit
	var reached bool   // the attempt was handed to the transport
	x.Service = s.name
	if err := propagateDeadline(x); err != nil {
		return nil, err
	}
	if s.adaptive != nil {
		tok, ok := s.adaptive.Acquire()
		if !ok {
			s.limited.Inc()
			return nil, proxy.Fail(503, proxy.ReasonConcurrencyLimited, errConcurrencyLimited)
		}
		start := time.Now()
		defer func() {
			// An attempt that never reached an endpoint (a breaker or the balancer refused it)
			// says nothing about latency: it is released unsampled (a zero RTT).
			var rtt time.Duration
			if reached {
				rtt = time.Since(start)
			}
			s.adaptive.Release(tok, rtt, !localFail)
			s.limit.Set(float64(s.adaptive.Limit()))
		}()
	}
	b := s.cluster.Breaker()
	var ticket cluster.Ticket
	if b != nil {
		t, err := b.Admit(x.Attempts > 1)
		if err != nil {
			return nil, err
		}
		ticket = t
	}
	var key uint64
	var hasKey bool
	if s.hashOn != nil {
		key, hasKey = cluster.HashKey(s.hashOn, x.Req.Header, x.ClientIP)
	}
	ep, err := s.cluster.Pick(key, hasKey)
	for i := 0; err == nil && ep == avoid && i < 3 && s.cluster.HealthyCount() > 1; i++ {
		// Random-ish policies may pick the failed endpoint again; hashing ones always will, and
		// a retry on a different endpoint matters more than stickiness.
		if hasKey {
			key = key*0x9E3779B97F4A7C15 + 1
		}
		ep, err = s.cluster.Pick(key, hasKey)
	}
	if err != nil {
		if b != nil {
			b.Done(ticket, 0, false)
		}
		if errors.Is(err, cluster.ErrNoHealthyEndpoint) {
			return nil, proxy.Fail(503, proxy.ReasonNoHealthyUpstream, err)
		}
		return nil, proxy.Fail(503, proxy.ReasonUpstreamUnavailable, err)
	}
	x.Endpoint = ep.Address
	ep.Begin()
	reached = true
	var ph *peerHold
	if s.dial != nil {
		signEdge(s.edge, x)
		// A mesh peer may answer that its workload is unreachable: see peerHold.
		ph = &peerHold{inner: x.Hold}
		x.Hold = ph
	}
	if x.Trace != nil {
		x.Trace.StartAttempt(x, ep.Address)
	}
	err = s.transport.Forward(x, ep.Address)
	if x.Trace != nil {
		x.Trace.EndAttempt(x, err)
	}
	ep.End()
	if ph != nil {
		x.Hold = ph.inner
	}
	if ep.Removed() {
		s.retired(ep)
	}
	status, local := attemptOutcome(x, err)
	localFail = local
	s.cluster.Report(ep, status, local)
	if status != 0 || local {
		s.cluster.ReportConnect(ep, connectFailed(err) || ph != nil && ph.unavailable)
	}
	if b != nil {
		b.Done(ticket, status, local)
	}
	return ep, err
}

// connectFailed reports whether err says an attempt could not connect to its endpoint at all: the
// dial was refused, found no route or timed out, or the mutual TLS handshake with a mesh peer
// failed (the peer died mid-handshake or presented a certificate it must not). A full
// connection pool is not a connect failure.
func connectFailed(err error) bool {
	var pe *proxy.Error
	if !errors.As(err, &pe) {
		return false
	}
	var oe *net.OpError
	return pe.Reason == proxy.ReasonMeshTLS || pe.Reason == proxy.ReasonUpstreamUnavailable && errors.As(err, &oe) && oe.Op == "dial"
}

// attemptOutcome tells what an attempt says about its endpoint: the status the upstream answered,
// or localFailure when it could not be reached, reset the connection, timed out or broke the
// protocol. Both are zero when the attempt ended for a reason that says nothing about the
// upstream (the client went away, its body was too large, a breaker refused it).
func attemptOutcome(x *proxy.Exchange, err error) (status int, localFailure bool) {
	if err == nil {
		return x.Status, false
	}
	var held *proxy.HeldResponse
	if errors.As(err, &held) {
		return held.Status, false
	}
	var pe *proxy.Error
	if errors.As(err, &pe) {
		switch pe.Reason {
		case proxy.ReasonUpstreamUnavailable, proxy.ReasonUpstreamReset, proxy.ReasonUpstreamTimeout,
			proxy.ReasonUpstreamProtocol, proxy.ReasonStreamIdleTimeout, proxy.ReasonMeshTLS:
			return 0, true
		}
	}
	// The upstream answered (x.Status is set once its head went downstream), and then the
	// exchange failed for a reason of the client's.
	return x.Status, false
}
