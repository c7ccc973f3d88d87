package auth

import (
	"strconv"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
	"github.com/meshgate/meshgate/internal/security/credential"
)

// Basic authenticates HTTP basic credentials against consumers' bcrypt hashes. The
// Authorization header is removed from the request sent upstream.
type Basic struct {
	name      string
	challenge string
	dir       *credential.Directory
}

var _ Authenticator = (*Basic)(nil)

// NewBasic returns the basic authenticator name configured by c.
func NewBasic(name string, c *config.BasicAuth, dir *credential.Directory) *Basic {
	return &Basic{name: name, challenge: "Basic realm=" + strconv.Quote(c.Realm) + `, charset="UTF-8"`, dir: dir}
}

// Name implements Authenticator.
func (a *Basic) Name() string { return a.name }

// Challenge implements Authenticator.
func (a *Basic) Challenge() string { return a.challenge }

// Authenticate implements Authenticator.
func (a *Basic) Authenticate(x *proxy.Exchange) (*proxy.Identity, bool, error) {
	v, ok := authorization(x.Req.Header, "basic")
	if !ok {
		return nil, false, nil
	}
	if x.Req.Header.Count("Authorization") > 1 {
		return nil, true, badCredential(a.name, "more than one Authorization header")
	}
	x.Req.Header.Del("Authorization")
	user, pass, ok := credential.ParseBasic(v)
	if !ok {
		return nil, true, badCredential(a.name, "malformed basic credentials")
	}
	c, ok := a.dir.ByBasic(user, pass)
	if !ok {
		return nil, true, badCredential(a.name, "wrong user name or password")
	}
	return identity(a.name, c), true, nil
}

// RemoveCredential implements credentialRemover: basic credentials go even when another
// authenticator of the route decided.
func (a *Basic) RemoveCredential(x *proxy.Exchange) {
	if _, ok := authorization(x.Req.Header, "basic"); ok {
		x.Req.Header.Del("Authorization")
	}
}

// authorization returns the Authorization header's value when its scheme is scheme (compared
// without regard to case).
func authorization(h httpmsg.Header, scheme string) (string, bool) {
	v, ok := h.Get("Authorization")
	if !ok || len(v) < len(scheme)+1 || v[len(scheme)] != ' ' || !httpmsg.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	return v, true
}
