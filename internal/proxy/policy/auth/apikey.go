package auth

import (
	"net/url"
	"strings"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/security/credential"
)

// APIKey authenticates by an API key in a header or, when allowed, a query parameter. The key is
// removed from the request sent upstream.
type APIKey struct {
	name   string
	header string
	query  string
	dir    *credential.Directory
}

var _ Authenticator = (*APIKey)(nil)

// NewAPIKey returns the API-key authenticator name configured by c, checking keys against dir.
func NewAPIKey(name string, c *config.APIKeyAuth, dir *credential.Directory) *APIKey {
	return &APIKey{name: name, header: c.Header, query: c.Query, dir: dir}
}

// Name implements Authenticator.
func (a *APIKey) Name() string { return a.name }

// Challenge implements Authenticator: API keys have no standard challenge.
func (a *APIKey) Challenge() string { return "" }

// Authenticate implements Authenticator.
func (a *APIKey) Authenticate(x *proxy.Exchange) (*proxy.Identity, bool, error) {
	key, present := x.Req.Header.Get(a.header)
	if present {
		if x.Req.Header.Count(a.header) > 1 {
			return nil, true, badCredential(a.name, "more than one API key header")
		}
		x.Req.Header.Del(a.header)
	} else if a.query != "" {
		key, present = a.fromQuery(x)
	}
	if !present {
		return nil, false, nil
	}
	c, _, ok := a.dir.ByAPIKey(key)
	if !ok {
		return nil, true, badCredential(a.name, "unknown API key")
	}
	return identity(a.name, c), true, nil
}

// fromQuery takes the key out of the query string.
func (a *APIKey) fromQuery(x *proxy.Exchange) (string, bool) {
	if x.Req.Query == "" || !strings.Contains(x.Req.Query, a.query+"=") {
		return "", false
	}
	q, err := url.ParseQuery(x.Req.Query)
	if err != nil {
		return "", false
	}
	vs, ok := q[a.query]
	if !ok || len(vs) != 1 {
		return "", ok
	}
	delete(q, a.query)
	x.Req.Query = q.Encode()
	return vs[0], true
}

// identity is the identity of consumer c found by authenticator name.
func identity(name string, c *credential.Consumer) *proxy.Identity {
	return &proxy.Identity{Authenticator: name, Consumer: c.Name, Groups: c.Groups, Plan: c.Plan}
}
