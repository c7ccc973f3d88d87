package sidecar

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/mesh/mtls"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/security/authz"
)

// tlsRecordHandshake is the first byte of a TLS connection (a handshake record).
const tlsRecordHandshake = 0x16

// handWait bounds how long a front waits for the engine to take a connection.
const handWait = 5 * time.Second

// serveInbound accepts calls to the workload until ln closes.
func (s *Sidecar) serveInbound(ln net.Listener) {
	serveFront(ln, s.log, func(c net.Conn) { s.inboundConn(c) }, &s.wg)
}

// inboundConn serves one connection to the inbound front: a mesh peer's mutual TLS, or
// plaintext (refused unless the service is permissive).
func (s *Sidecar) inboundConn(c net.Conn) {
	p := s.plan.Load()
	if p == nil {
		s.refuse(c, "inbound", proxy.ReasonNoRoute, "no config yet")
		return
	}
	// An intercepted plaintext connection was going to a workload port: remember which.
	var dstPort int
	if t := s.opts.Transparent; t != nil {
		if dst, err := t.OriginalDst(c); err == nil && !sameAddr(dst, c.LocalAddr()) {
			dstPort = int(dst.Port())
		}
	}
	br := bufio.NewReaderSize(c, 4<<10)
	_ = c.SetReadDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	first, err := br.Peek(1)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		_ = c.Close()
		return
	}
	pc := &peekedConn{Conn: c, r: br}
	if first[0] != tlsRecordHandshake {
		s.inboundPlaintext(pc, p, dstPort)
		return
	}
	acc := s.acceptor.Load()
	if acc == nil {
		s.refuse(c, "inbound", proxy.ReasonMeshTLS, "no certificate yet")
		return
	}
	in, err := acc.Handshake(s.ctx, pc, s.opts.HandshakeTimeout)
	if err != nil {
		s.m.refused.WithLabelValues("inbound", proxy.ReasonMeshTLS).Inc()
		s.log.Info("inbound mTLS handshake refused", "peer", c.RemoteAddr().String(), "why", mtls.Classify(err), "error", err)
		return
	}
	port, ok := s.opts.port(in.Port)
	if !ok {
		s.refuse(in.Conn, "inbound", proxy.ReasonProtocolMismatch, fmt.Sprintf("the workload has no port %q", in.Port))
		return
	}
	if (in.ALPN == mtls.ALPNTCP) != (port.Protocol == config.AppTCP) {
		s.refuse(in.Conn, "inbound", proxy.ReasonProtocolMismatch,
			fmt.Sprintf("peer %s sent %s to port %q, declared %s", in.Conn.PeerID, in.ALPN, port.Name, port.Protocol))
		return
	}
	if port.Protocol == config.AppTCP {
		s.inboundTCP(in.Conn, port, in.Conn.PeerID, p)
		return
	}
	s.handTo(inboundPrefix+port.Name, in.Conn, "inbound")
}

// inboundPlaintext serves a plaintext connection: only a permissive service takes it, on the
// workload port it was intercepted for (or the only port).
func (s *Sidecar) inboundPlaintext(c *peekedConn, p *plan, dstPort int) {
	if !p.permissive {
		s.refusePlaintextHTTP(c)
		return
	}
	var port Port
	var ok bool
	if dstPort != 0 {
		port, ok = s.opts.portByNumber(dstPort)
	} else if len(s.opts.Ports) == 1 {
		port, ok = s.opts.Ports[0], true
	}
	if !ok {
		s.refuse(c, "inbound", proxy.ReasonProtocolMismatch, "a plaintext connection names no workload port")
		return
	}
	if port.Protocol == config.AppTCP {
		s.inboundTCP(c, port, "", p)
		return
	}
	s.handTo(inboundPrefix+port.Name, c, "inbound")
}

// refusePlaintextHTTP answers a plaintext connection to a strict service: HTTP clients get a
// 403 that says why; the connection is closed either way.
func (s *Sidecar) refusePlaintextHTTP(c *peekedConn) {
	s.m.refused.WithLabelValues("inbound", proxy.ReasonMTLSRequired).Inc()
	s.log.Info("plaintext connection refused: the service accepts only mutual TLS", "peer", c.RemoteAddr().String())
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	body := "mutual TLS required: this service accepts calls only from mesh workloads\n"
	_, _ = fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n%s: %s\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		proxy.ReasonHeader, proxy.ReasonMTLSRequired, len(body), body)
	closeSoon(c)
}

// inboundTCP authorizes an opaque TCP call by the peer's identity and relays it to the
// workload port.
func (s *Sidecar) inboundTCP(c net.Conn, port Port, peerID string, p *plan) {
	if p.inboundAuthz != nil {
		src, _ := netip.ParseAddrPort(c.RemoteAddr().String())
		d := p.inboundAuthz.Decide(&authz.Input{PeerID: peerID, SourceIP: src.Addr().Unmap()})
		if !d.Allow {
			s.m.tcp.WithLabelValues("inbound", port.Name, proxy.ReasonAuthzDenied).Inc()
			s.refuse(c, "inbound", proxy.ReasonAuthzDenied, fmt.Sprintf("peer %q refused by rule %q", peerID, d.Rule))
			return
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	app, err := s.opts.Dialer.DialContext(ctx, "tcp", joinHostPort(s.opts.AppHost, port.Port))
	cancel()
	if err != nil {
		s.m.tcp.WithLabelValues("inbound", port.Name, proxy.ReasonUpstreamUnavailable).Inc()
		s.refuse(c, "inbound", proxy.ReasonUpstreamUnavailable, err.Error())
		return
	}
	s.m.tcp.WithLabelValues("inbound", port.Name, "ok").Inc()
	in, out := relay(c, app, s.opts.TCPIdleTimeout)
	s.m.tcpBytes.WithLabelValues("received", port.Name).Add(float64(in))
	s.m.tcpBytes.WithLabelValues("sent", port.Name).Add(float64(out))
}

// peekedConn is a connection whose first bytes were read into r.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// NetConn returns the accepted connection under the buffer.
func (c *peekedConn) NetConn() net.Conn { return c.Conn }

// CloseWrite half-closes the underlying TCP connection.
func (c *peekedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// sameAddr reports whether dst is the address a connection was accepted on (not intercepted).
func sameAddr(dst netip.AddrPort, local net.Addr) bool {
	l, err := netip.ParseAddrPort(local.String())
	return err == nil && l.Addr().Unmap() == dst.Addr().Unmap() && l.Port() == dst.Port()
}
