package auth

import (
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/security/credential"
)

// ClientCert authenticates by the TLS client certificate the listener verified, mapped to a
// consumer by subject or SAN.
type ClientCert struct {
	name          string
	allowUnmapped bool
	dir           *credential.Directory
}

var _ Authenticator = (*ClientCert)(nil)

// NewClientCert returns the client-certificate authenticator name configured by c.
func NewClientCert(name string, c *config.ClientCertAuth, dir *credential.Directory) *ClientCert {
	return &ClientCert{name: name, allowUnmapped: c.AllowUnmapped, dir: dir}
}

// Name implements Authenticator.
func (a *ClientCert) Name() string { return a.name }

// Challenge implements Authenticator: a certificate is asked for in the TLS handshake.
func (a *ClientCert) Challenge() string { return "" }

// Authenticate implements Authenticator.
func (a *ClientCert) Authenticate(x *proxy.Exchange) (*proxy.Identity, bool, error) {
	if len(x.PeerCertificates) == 0 {
		return nil, false, nil
	}
	c, ok := a.dir.ByCertificate(x.PeerCertificates[0])
	switch {
	case ok:
		return identity(a.name, c), true, nil
	case a.allowUnmapped:
		return &proxy.Identity{Authenticator: a.name}, true, nil
	}
	return nil, true, badCredential(a.name, "the client certificate maps to no consumer")
}
