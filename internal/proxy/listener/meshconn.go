package listener

import (
	"context"
	"crypto/tls"
)

// MeshConn is a mutual TLS connection from a mesh peer whose workload identity was verified
// before the connection reached the listener (by a sidecar's inbound handshake). Its requests
// carry the identity as Exchange.PeerID.
type MeshConn struct {
	*tls.Conn
	// PeerID is the SPIFFE ID the peer's certificate proved.
	PeerID string
}

// peerIDKey carries a MeshConn's PeerID into the HTTP/2 streams served on it.
type peerIDKey struct{}

// meshPeer returns the verified mesh identity of c's peer, or "".
func meshPeer(c any) string {
	if mc, ok := c.(*MeshConn); ok {
		return mc.PeerID
	}
	return ""
}

// peerIDFrom returns the mesh identity an HTTP/2 connection's context carries, or "".
func peerIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(peerIDKey{}).(string)
	return id
}
