package mtls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshgate/meshgate/internal/identity"
	"github.com/meshgate/meshgate/internal/proxy/listener"
)

// Acceptor performs a sidecar's inbound handshakes: it presents the sidecar's certificate and
// admits peers whose certificate chains to the trust bundle and names a workload of the
// mesh's trust domain.
type Acceptor struct {
	cfg *tls.Config
	m   *Metrics
}

// NewAcceptor returns an acceptor for src's trust domain that refuses revoked peers. m and
// revoked may be nil.
func NewAcceptor(src *identity.Source, m *Metrics, revoked *Revocations) *Acceptor {
	td := src.ID().TrustDomain()
	cfg := src.ServerTLSConfig(func(id spiffeid.ID, chains [][]*x509Cert) error {
		if !id.MemberOf(td) {
			return fmt.Errorf("%w: %s is not in trust domain %s", errForeignDomain, id, td)
		}
		if _, _, err := identity.ParseWorkloadID(id); err != nil {
			return fmt.Errorf("%w: %s: %v", errNotWorkload, id, err)
		}
		return revoked.check(id, chains)
	})
	cfg.MinVersion = tls.VersionTLS13
	cfg.NextProtos = []string{ALPNHTTP2, ALPNHTTP1, ALPNTCP}
	return &Acceptor{cfg: cfg, m: m}
}

// Inbound is an accepted mesh connection after its handshake.
type Inbound struct {
	// Conn is the connection, ready to hand to an HTTP listener (for ALPNHTTP2 and ALPNHTTP1).
	Conn *listener.MeshConn
	// Port is the workload port the peer asked for ("" for the workload's only port).
	Port string
	// ALPN is the negotiated protocol.
	ALPN string
}

// Handshake runs the server handshake on c within timeout. On failure it closes c and returns
// an error whose Classify names why; the failure is counted.
func (a *Acceptor) Handshake(ctx context.Context, c net.Conn, timeout time.Duration) (*Inbound, error) {
	tuneTCP(underlying(c))
	tc := tls.Server(c, a.cfg)
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = c.Close()
		a.m.inbound(Classify(err))
		return nil, fmt.Errorf("mtls: handshake from %s: %w", c.RemoteAddr(), err)
	}
	st := tc.ConnectionState()
	port, ok := PortFromServerName(st.ServerName)
	if !ok {
		_ = tc.Close()
		a.m.inbound(FailureProtocol)
		return nil, fmt.Errorf("mtls: %w: server name %q from %s names no workload port", errProtocol, st.ServerName, c.RemoteAddr())
	}
	if st.NegotiatedProtocol == "" {
		_ = tc.Close()
		a.m.inbound(FailureProtocol)
		return nil, fmt.Errorf("mtls: %w: %s offered no protocol this sidecar speaks", errProtocol, c.RemoteAddr())
	}
	id, err := peerID(st)
	if err != nil {
		_ = tc.Close()
		a.m.inbound(FailureUntrusted)
		return nil, err
	}
	a.m.inbound("")
	return &Inbound{Conn: &listener.MeshConn{Conn: tc, PeerID: id}, Port: port, ALPN: st.NegotiatedProtocol}, nil
}

// underlying returns the TCP connection under a wrapper that exposes it (NetConn), or c.
func underlying(c net.Conn) net.Conn {
	if w, ok := c.(interface{ NetConn() net.Conn }); ok {
		return w.NetConn()
	}
	return c
}

// peerID returns the SPIFFE ID of the verified peer certificate.
func peerID(st tls.ConnectionState) (string, error) {
	if len(st.PeerCertificates) == 0 {
		return "", errors.New("mtls: the peer presented no certificate")
	}
	for _, u := range st.PeerCertificates[0].URIs {
		if id, err := spiffeid.FromURI(u); err == nil {
			return id.String(), nil
		}
	}
	return "", errors.New("mtls: the peer certificate has no SPIFFE ID")
}

// The authorizer's refusals.
var (
	errForeignDomain = errors.New("peer from another trust domain")
	errNotWorkload   = errors.New("peer identity is not a workload")
	errProtocol      = errors.New("protocol mismatch")
)
