package sidecar

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/meshgate/meshgate/internal/proxy"
)

// tcpConnectAttempts is how many endpoints an opaque TCP call tries before it gives up.
const tcpConnectAttempts = 3

// serveOutbound accepts the workload's calls on the outbound front until ln closes.
func (s *Sidecar) serveOutbound(ln net.Listener) {
	serveFront(ln, s.log, func(c net.Conn) { s.outboundConn(c) }, &s.wg)
}

// serveUpstream accepts calls bound to one service (an explicit --upstream port).
func (s *Sidecar) serveUpstream(ln net.Listener, service string) {
	serveFront(ln, s.log, func(c net.Conn) { s.boundConn(c, service) }, &s.wg)
}

// outboundConn serves one call of the workload: intercepted ones by their original destination,
// explicit ones by the HTTP host they name.
func (s *Sidecar) outboundConn(c net.Conn) {
	if t := s.opts.Transparent; t != nil {
		if dst, err := t.OriginalDst(c); err == nil && !sameAddr(dst, c.LocalAddr()) {
			s.intercepted(c, dst, t)
			return
		}
	}
	s.handTo(outboundListener, c, "outbound")
}

// intercepted dispatches a redirected connection: to a mesh service by its virtual IP, or (when
// allowed) straight on to an address outside the mesh.
func (s *Sidecar) intercepted(c net.Conn, dst netip.AddrPort, t *Transparent) {
	p := s.plan.Load()
	if key, ok := t.ServiceOf(dst.Addr()); ok && p != nil {
		if tgt := p.targets[key]; tgt != nil {
			s.callTarget(c, tgt)
			return
		}
	}
	if t.IsVirtual(dst.Addr()) || !t.Passthrough {
		s.refuse(c, "outbound", proxy.ReasonUnknownDestination, fmt.Sprintf("%s is no mesh service's address", dst))
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	up, err := s.opts.Dialer.DialContext(ctx, "tcp", dst.String())
	cancel()
	if err != nil {
		s.refuse(c, "outbound", proxy.ReasonUpstreamUnavailable, err.Error())
		return
	}
	relay(c, up, s.opts.TCPIdleTimeout)
}

// boundConn serves a connection to a port bound to service name.
func (s *Sidecar) boundConn(c net.Conn, name string) {
	p := s.plan.Load()
	if p == nil || p.byName[name] == nil {
		s.refuse(c, "outbound", proxy.ReasonUnknownDestination, fmt.Sprintf("service %q is not in the config", name))
		return
	}
	s.callTarget(c, p.byName[name])
}

// callTarget sends a connection to a mesh service: HTTP through the engine, opaque TCP relayed.
func (s *Sidecar) callTarget(c net.Conn, t *meshTarget) {
	if !t.tcp {
		s.handTo(outboundPrefix+t.name, c, "outbound")
		return
	}
	s.outboundTCP(c, t.name)
}

// outboundTCP relays an opaque TCP call to an endpoint of service name, picked by the service's
// cluster (its balancer, health and outlier detection), over mutual TLS for a mesh service.
// A failed connect tries another endpoint.
func (s *Sidecar) outboundTCP(c net.Conn, name string) {
	tab := s.gw.Engine().Table()
	cl := tab.Cluster(name)
	if cl == nil {
		s.refuse(c, "outbound", proxy.ReasonUnknownDestination, "service "+name+" has no cluster")
		return
	}
	var lastErr error
	for range tcpConnectAttempts {
		ep, err := cl.Pick(0, false)
		if err != nil {
			s.m.tcp.WithLabelValues("outbound", name, proxy.ReasonNoHealthyUpstream).Inc()
			s.refuse(c, "outbound", proxy.ReasonNoHealthyUpstream, err.Error())
			return
		}
		ep.Begin()
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		up, err := tab.Dial(ctx, name, ep.Address)
		cancel()
		cl.ReportConnect(ep, err != nil)
		if err != nil {
			ep.End()
			lastErr = err
			continue
		}
		s.m.tcp.WithLabelValues("outbound", name, "ok").Inc()
		out, in := relay(c, up, s.opts.TCPIdleTimeout)
		ep.End()
		s.m.tcpBytes.WithLabelValues("sent", name).Add(float64(out))
		s.m.tcpBytes.WithLabelValues("received", name).Add(float64(in))
		return
	}
	reason := proxy.ReasonUpstreamUnavailable
	var pe *proxy.Error
	if errors.As(lastErr, &pe) {
		reason = pe.Reason
	}
	s.m.tcp.WithLabelValues("outbound", name, reason).Inc()
	s.refuse(c, "outbound", reason, lastErr.Error())
}
