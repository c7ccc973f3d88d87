// Package mtls is mutual TLS between meshgate proxies with workload identities: the dialer a
// proxy calls mesh peers with (the engine's MeshDialer) and the handshake a sidecar accepts
// them with. Certificates and the trust bundle come from the proxy's identity.Source, so renewed
// certificates and rotated roots take effect on the next handshake.
//
// On the wire a call is TLS 1.3 to the peer sidecar's inbound port. The server name (SNI) names
// the workload port the call is for, and ALPN says what follows the handshake: "http/1.1" or
// "h2" (the workload's own HTTP protocol, so a keep-alive HTTP/1.1 call costs what it costs at
// the edge, and upgrades such as WebSocket cross the mesh), or "meshgate-tcp/1" (opaque TCP,
// relayed as it is).
package mtls

// ALPN protocols of a mesh connection.
const (
	// ALPNHTTP2 carries HTTP calls as HTTP/2.
	ALPNHTTP2 = "h2"
	// ALPNHTTP1 carries HTTP/1.1 (accepted from peers that do not upgrade).
	ALPNHTTP1 = "http/1.1"
	// ALPNTCP carries an opaque TCP stream.
	ALPNTCP = "meshgate-tcp/1"
)
