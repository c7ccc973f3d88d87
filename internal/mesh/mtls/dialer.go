package mtls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"sync"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/identity"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/engine"
)

// Dialer calls mesh peers with the proxy's workload identity. It implements engine.MeshDialer.
type Dialer struct {
	source  *identity.Source
	net     *net.Dialer
	m       *Metrics
	revoked *Revocations

	mu      sync.Mutex
	configs map[configKey]*tls.Config
}

var _ engine.MeshDialer = (*Dialer)(nil)

// configKey identifies one client TLS config: the peer identity, the port and the protocol.
type configKey struct{ id, port, alpn string }

// NewDialer returns a dialer presenting src's certificate and refusing revoked peers. nd opens
// the TCP connections (a sidecar's marks its sockets so interception leaves them alone); nil
// uses a plain dialer. m and revoked may be nil.
func NewDialer(src *identity.Source, nd *net.Dialer, m *Metrics, revoked *Revocations) *Dialer {
	if nd == nil {
		nd = &net.Dialer{}
	}
	return &Dialer{source: src, net: nd, m: m, revoked: revoked, configs: map[configKey]*tls.Config{}}
}

// DialMesh connects to the peer sidecar at addr, checks that it presents m.Identity and asks
// for m.Port; calls keep the workload's protocol (HTTP/1.1 on pooled keep-alive connections,
// HTTP/2 and gRPC multiplexed), opaque TCP negotiates ALPNTCP. A failed TCP connect is a
// *proxy.Error with reason upstream_unavailable (a connect failure: retried on another
// endpoint and counted by outlier detection); a failed handshake one with reason
// mesh_tls_failed (503), which the engine treats as a connect failure of that endpoint too.
func (d *Dialer) DialMesh(ctx context.Context, addr string, m *config.ServiceMesh) (net.Conn, error) {
	alpn := ALPNHTTP2
	switch m.AppProtocol {
	case config.AppTCP:
		alpn = ALPNTCP
	case config.UpstreamHTTP1:
		alpn = ALPNHTTP1
	}
	cfg, err := d.config(m.Identity, m.Port, alpn)
	if err != nil {
		return nil, proxy.Fail(503, proxy.ReasonMeshTLS, err)
	}
	tcpCtx, cancel := context.WithTimeout(ctx, TCPConnectTimeout)
	c, err := d.net.DialContext(tcpCtx, "tcp", addr)
	cancel()
	if err != nil {
		// Typed here because the HTTP/2 transport reports a bare dial error as a reset (502
		// upstream_reset): as upstream_unavailable it is a connect failure, retried on another
		// endpoint and counted by outlier detection.
		return nil, proxy.Fail(503, proxy.ReasonUpstreamUnavailable, fmt.Errorf("mtls: %s: %w", addr, err))
	}
	tuneTCP(c)
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		why := Classify(err)
		d.m.outbound(why)
		return nil, proxy.Fail(503, proxy.ReasonMeshTLS, fmt.Errorf("mtls: %s: peer %s (%s): %w", addr, m.Identity, why, err))
	}
	if got := tc.ConnectionState().NegotiatedProtocol; got != alpn {
		_ = tc.Close()
		d.m.outbound(FailureProtocol)
		return nil, proxy.Fail(503, proxy.ReasonProtocolMismatch, fmt.Errorf("mtls: %s: peer %s negotiated %q, want %q", addr, m.Identity, got, alpn))
	}
	return tc, nil
}

// config returns the client TLS config for calls to identity id on port with protocol alpn,
// built once.
func (d *Dialer) config(id, port, alpn string) (*tls.Config, error) {
	k := configKey{id, port, alpn}
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.configs[k]; c != nil {
		return c, nil
	}
	want, err := spiffeid.FromString(id)
	if err != nil {
		return nil, fmt.Errorf("mtls: peer identity: %w", err)
	}
	byID := tlsconfig.AuthorizeID(want)
	c := d.source.ClientTLSConfig(func(id spiffeid.ID, chains [][]*x509.Certificate) error {
		if err := byID(id, chains); err != nil {
			return err
		}
		return d.revoked.check(id, chains)
	})
	c.MinVersion = tls.VersionTLS13
	c.NextProtos = []string{alpn}
	c.ServerName = ServerName(port)
	if len(d.configs) > 4096 {
		clear(d.configs) // bounded: services come and go
	}
	d.configs[k] = c
	return c, nil
}

// ServerName is the TLS server name that asks a peer sidecar for its workload's port called
// port ("" for the workload's only port).
func ServerName(port string) string {
	if port == "" {
		return "port.mesh"
	}
	return port + ".port.mesh"
}

// PortFromServerName returns the port name ServerName encoded, "" for the workload's only
// port, and false when name is not a mesh server name.
func PortFromServerName(name string) (string, bool) {
	if name == "" || name == "port.mesh" {
		return "", true
	}
	p, ok := cutSuffix(name, ".port.mesh")
	if !ok || !config.IsMeshName(p) {
		return "", false
	}
	return p, true
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) < len(suffix) || s[len(s)-len(suffix):] != suffix {
		return s, false
	}
	return s[:len(s)-len(suffix)], true
}
