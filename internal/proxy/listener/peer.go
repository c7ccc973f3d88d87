package listener

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"
	"time"

	"github.com/meshgate/meshgate/internal/proxy"
)

// peerInfo is what a connection knows of its client, given to each of its exchanges.
type peerInfo struct {
	peer     netip.AddrPort
	peerText string
	scheme   string
	// peerCerts is the client's verified certificate chain on a TLS connection, or nil.
	peerCerts []*x509.Certificate
	// peerID is the verified mesh identity of the peer on a sidecar's inbound connection, or "".
	peerID string
}

// newPeerInfo describes the client of c: its address, and on TLS its verified chain (on a mesh
// connection, its workload identity too).
func newPeerInfo(c net.Conn) peerInfo {
	p := peerInfo{peer: addrPort(c.RemoteAddr()), scheme: "http"}
	p.peerText = p.peer.Addr().Unmap().String()
	switch tc := unwrapConn(c).(type) {
	case *MeshConn:
		p.peerID = tc.PeerID
		p.peerCerts = tc.ConnectionState().PeerCertificates
		p.scheme = "https"
	case *tls.Conn:
		p.scheme = "https"
		if st := tc.ConnectionState(); len(st.VerifiedChains) > 0 {
			p.peerCerts = st.PeerCertificates
		}
	}
	return p
}

// startExchange fills what an exchange takes from its listener and connection, and starts its
// clock and deadline.
func (l *Listener) startExchange(x *proxy.Exchange, p *peerInfo, s *Settings) {
	now := time.Now()
	x.Start = now
	x.Listener = l.name
	x.Scheme = p.scheme
	x.Peer = p.peer
	x.PeerText = p.peerText
	x.PeerCertificates = p.peerCerts
	x.PeerID = p.peerID
	if s.RequestTimeout > 0 {
		x.Deadline = now.Add(s.RequestTimeout)
	}
}

// reject answers a request refused before routing (its head was malformed or over a limit), and
// has it recorded like any other when the handler can.
func (l *Listener) reject(x *proxy.Exchange, err *proxy.Error) {
	if h, ok := l.h().(interface {
		RejectExchange(x *proxy.Exchange, err *proxy.Error)
	}); ok {
		h.RejectExchange(x, err)
		return
	}
	_ = proxy.RespondError(x, err)
}
