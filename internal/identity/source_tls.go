package identity

import (
	"crypto/tls"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// ServerTLSConfig returns a TLS server config that presents the Source's current certificate,
// requires a client certificate that verifies against the current trust bundle, and lets
// authorize decide on the client's SPIFFE ID. Renewed certificates and new bundles are used by
// later handshakes without rebuilding the config.
func (s *Source) ServerTLSConfig(authorize tlsconfig.Authorizer) *tls.Config {
	return tlsconfig.MTLSServerConfig(s, s, authorize)
}

// ClientTLSConfig returns a TLS client config that presents the Source's current certificate
// and verifies the server's certificate against the current trust bundle, letting authorize
// decide on its SPIFFE ID (host names are not checked).
func (s *Source) ClientTLSConfig(authorize tlsconfig.Authorizer) *tls.Config {
	return tlsconfig.MTLSClientConfig(s, s, authorize)
}
