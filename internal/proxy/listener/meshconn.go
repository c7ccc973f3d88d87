package listener

import (
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
